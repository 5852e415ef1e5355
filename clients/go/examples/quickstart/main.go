// Command quickstart is the brief's Quick Start in Go:
//
//	NEXADB_API_KEY=... go run ./examples/quickstart
//
// It connects to $NEXADB_HOST:$NEXADB_PORT (default localhost:6970, the gRPC port).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	key := os.Getenv("NEXADB_API_KEY")
	if key == "" {
		log.Fatal("set NEXADB_API_KEY to a key of your server (its data dir's api_key file)")
	}
	addr := env("NEXADB_HOST", "localhost") + ":" + env("NEXADB_PORT", fmt.Sprint(nexadb.DefaultPort))
	ctx := context.Background()

	// Connect
	db, err := nexadb.Connect(addr, nexadb.WithAPIKey(key))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	// Create collection
	users := db.Collection("users")

	// Insert document
	userID, err := users.Insert(ctx, nexadb.Document{
		"name":  "Alice Johnson",
		"email": "alice@example.com",
		"age":   28,
		"tags":  []string{"go", "database"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Query
	results, err := users.Find(ctx, nexadb.Document{"age": nexadb.Document{"$gt": 25}})
	if err != nil {
		log.Fatal(err)
	}
	for _, user := range results {
		fmt.Printf("%s - %d\n", user["name"], user["age"])
	}

	// Update
	if _, err := users.Update(ctx, userID, nexadb.Document{"age": 29}); err != nil {
		log.Fatal(err)
	}
	user, err := users.FindByID(ctx, userID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("updated: %d\n", user["age"])

	// Delete
	if _, err := users.Delete(ctx, userID); err != nil {
		log.Fatal(err)
	}
	_, err = users.FindByID(ctx, userID)
	fmt.Printf("deleted: %t\n", errors.Is(err, nexadb.ErrNotFound))
}
