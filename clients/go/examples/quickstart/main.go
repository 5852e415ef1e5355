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

	"go.mongodb.org/mongo-driver/v2/bson"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

// User is the brief's user document; bson tags name its fields in the database, and the
// struct's field order is the stored key order.
type User struct {
	ID    string   `bson:"_id,omitempty"`
	Name  string   `bson:"name"`
	Email string   `bson:"email"`
	Age   int      `bson:"age"`
	Tags  []string `bson:"tags"`
}

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

	// Insert document (a struct; a bson.D or a map would do too)
	userID, err := users.Insert(ctx, User{
		Name:  "Alice Johnson",
		Email: "alice@example.com",
		Age:   28,
		Tags:  []string{"go", "database"},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Query
	results, err := users.Find(ctx, bson.M{"age": bson.M{"$gt": 25}})
	if err != nil {
		log.Fatal(err)
	}
	for _, doc := range results {
		var user User
		if err := nexadb.Decode(doc, &user); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s - %d\n", user.Name, user.Age)
	}

	// Update
	if _, err := users.Update(ctx, userID, bson.M{"age": 29}); err != nil {
		log.Fatal(err)
	}
	doc, err := users.FindByID(ctx, userID)
	if err != nil {
		log.Fatal(err)
	}
	var user User
	if err := nexadb.Decode(doc, &user); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("updated: %d\n", user.Age)

	// Delete
	if _, err := users.Delete(ctx, userID); err != nil {
		log.Fatal(err)
	}
	_, err = users.FindByID(ctx, userID)
	fmt.Printf("deleted: %t\n", errors.Is(err, nexadb.ErrNotFound))
}
