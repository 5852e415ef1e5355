package nexadb_test

import (
	"context"
	"fmt"
	"log"
	"os"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

// The brief's Quick Start in Go (compiled by go test; see examples/quickstart to run it).
func Example() {
	ctx := context.Background()
	db, err := nexadb.Connect("localhost:6970", nexadb.WithAPIKey(os.Getenv("NEXADB_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	users := db.Collection("users")
	id, err := users.Insert(ctx, nexadb.Document{
		"name": "Alice Johnson", "email": "alice@example.com", "age": 28,
		"tags": []string{"go", "database"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for user, err := range users.FindIter(ctx, nexadb.Document{"age": nexadb.Document{"$gt": 25}}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s - %d\n", user["name"], user["age"].(int64))
	}
	if _, err := users.Update(ctx, id, nexadb.Document{"age": 29}); err != nil {
		log.Fatal(err)
	}
	if _, err := users.Delete(ctx, id); err != nil {
		log.Fatal(err)
	}
}
