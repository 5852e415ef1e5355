// The brief's Quick Start, "Your First Database (JavaScript)", over gRPC.
//
//   npm install clients/js            (or run from a project that depends on it)
//   NEXADB_API_KEY=... node clients/examples/quickstart.js
const { NexaDB } = require('nexadb');

async function main() {
  if (!process.env.NEXADB_API_KEY) {
    throw new Error('set NEXADB_API_KEY to a key of your server (its data dir\'s api_key file)');
  }
  // Connect (port 6970 is gRPC; the brief's 6969 is now the server's REST port)
  const db = new NexaDB({
    host: process.env.NEXADB_HOST || 'localhost',
    port: Number(process.env.NEXADB_PORT || 6970),
    apiKey: process.env.NEXADB_API_KEY,
  });

  // Create collection
  const users = db.collection('users');

  // Insert document
  const userId = await users.insert({
    name: 'Alice Johnson',
    email: 'alice@example.com',
    age: 28,
    tags: ['javascript', 'database'],
  });

  // Query
  const results = await users.find({ age: { $gt: 25 } });
  results.forEach((user) => {
    console.log(`${user.name} - ${user.age}`);
  });

  // Update
  await users.update(userId, { age: 29 });
  console.log(`updated: ${(await users.findById(userId)).age}`);

  // Delete
  await users.delete(userId);
  console.log(`deleted: ${(await users.findById(userId)) === null}`);
  db.close();
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
