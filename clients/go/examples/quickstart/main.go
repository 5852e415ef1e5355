// Command quickstart is the brief's Quick Start in Go:
//
//	NEXADB_API_KEY=... go run ./examples/quickstart [-addr localhost:6970]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

func main() {
	addr := flag.String("addr", fmt.Sprintf("localhost:%d", nexadb.DefaultPort), "server gRPC address")
	flag.Parse()
	ctx := context.Background()

	db, err := nexadb.Connect(*addr, nexadb.WithAPIKey(os.Getenv("NEXADB_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	users := db.Collection("users")
	userID, err := users.Insert(ctx, nexadb.Document{
		"name":  "Alice Johnson",
		"email": "alice@example.com",
		"age":   28,
		"tags":  []string{"go", "database"},
	})
	if err != nil {
		log.Fatal(err)
	}

	results, err := users.Find(ctx, nexadb.Document{"age": nexadb.Document{"$gt": 25}})
	if err != nil {
		log.Fatal(err)
	}
	for _, user := range results {
		fmt.Printf("%s - %d\n", user["name"], user["age"])
	}

	if _, err := users.Update(ctx, userID, nexadb.Document{"age": 29}); err != nil {
		log.Fatal(err)
	}
	if _, err := users.Delete(ctx, userID); err != nil {
		log.Fatal(err)
	}
}
