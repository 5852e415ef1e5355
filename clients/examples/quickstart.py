"""The brief's Quick Start, "Your First Database (Python)", over gRPC.

    NEXADB_API_KEY=... python clients/examples/quickstart.py
"""
from nexadb_client import NexaDB

from _connect import params

# Connect (port 6970 is gRPC; the brief's 6969 is now the server's REST port)
c = params()
db = NexaDB(host=c["host"], port=c["port"], api_key=c["api_key"])

# Create collection
users = db.collection('users')

# Insert document
user_id = users.insert({
    'name': 'Alice Johnson',
    'email': 'alice@example.com',
    'age': 28,
    'tags': ['python', 'database']
})

# Query
results = users.find({'age': {'$gt': 25}})
for user in results:
    print(f"{user['name']} - {user['age']}")

# Update
users.update(user_id, {'age': 29})
print(f"updated: {users.find_by_id(user_id)['age']}")

# Delete
users.delete(user_id)
print(f"deleted: {users.find_by_id(user_id) is None}")
