"""The brief's Example 1: an e-commerce product catalog.

    NEXADB_API_KEY=... python clients/examples/ecommerce.py
"""
from nexadb_client import NexaDB

from _connect import params

db = NexaDB(**params())
db.drop_collection('products')  # start from an empty catalog, so the script can be rerun
products = db.collection('products')

# Insert products
products.insert_many([
    {'name': 'Laptop', 'category': 'Electronics', 'price': 1200, 'stock': 50},
    {'name': 'Mouse', 'category': 'Electronics', 'price': 25, 'stock': 200},
    {'name': 'Desk', 'category': 'Furniture', 'price': 300, 'stock': 15},
    {'name': 'Lamp', 'category': 'Furniture', 'price': 40, 'stock': 0},
])

# Find products under $500
affordable = products.find({'price': {'$lt': 500}}, sort='price')
print("under $500:", [p['name'] for p in affordable])

# Find out-of-stock products
out_of_stock = products.find({'stock': {'$lte': 0}})
print("out of stock:", [p['name'] for p in out_of_stock])

# Aggregate by category
by_category = products.aggregate([
    {'$group': {'_id': '$category', 'count': {'$sum': 1}, 'avg_price': {'$avg': '$price'}}},
    {'$sort': {'count': -1, '_id': 1}}
])
for row in by_category:
    print(f"{row['_id']}: {row['count']} products, average ${row['avg_price']:.2f}")
