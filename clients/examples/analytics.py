"""The brief's Example 3: user analytics over an event log.

    NEXADB_API_KEY=... python clients/examples/analytics.py
"""
from nexadb_client import NexaDB

from _connect import params

db = NexaDB(**params())
db.drop_collection('events')  # start empty, so the script can be rerun
events = db.collection('events')

# Track user events
events.insert_many([
    {'user_id': 'u1', 'event': 'page_view', 'page': '/home', 'timestamp': '2024-01-15T10:00:00'},
    {'user_id': 'u1', 'event': 'click', 'button': 'signup', 'timestamp': '2024-01-15T10:05:00'},
    {'user_id': 'u2', 'event': 'page_view', 'page': '/pricing', 'timestamp': '2024-01-15T10:10:00'}
])

# Find all events for user
user_events = events.find({'user_id': 'u1'}, sort='timestamp')
print("u1:", [e['event'] for e in user_events])

# Count events by type
event_counts = events.aggregate([
    {'$group': {'_id': '$event', 'count': {'$sum': 1}}},
    {'$sort': {'count': -1, '_id': 1}}
])
for row in event_counts:
    print(f"{row['_id']}: {row['count']}")

# Find recent signups
recent_signups = events.find({
    'event': 'click',
    'button': 'signup',
    'timestamp': {'$gte': '2024-01-15T00:00:00'}
})
print("signups:", [e['user_id'] for e in recent_signups])
