package nexadb_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"go.mongodb.org/mongo-driver/v2/bson"

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
	id, err := users.Insert(ctx, bson.D{
		{Key: "name", Value: "Alice Johnson"}, {Key: "email", Value: "alice@example.com"},
		{Key: "age", Value: 28}, {Key: "tags", Value: []string{"go", "database"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for doc, err := range users.FindIter(ctx, bson.M{"age": bson.M{"$gt": 25}}) {
		if err != nil {
			log.Fatal(err)
		}
		var user struct {
			Name string `bson:"name"`
			Age  int    `bson:"age"`
		}
		if err := nexadb.Decode(doc, &user); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s - %d\n", user.Name, user.Age)
	}
	if _, err := users.Update(ctx, id, bson.M{"age": 29}); err != nil {
		log.Fatal(err)
	}
	if _, err := users.Delete(ctx, id); err != nil {
		log.Fatal(err)
	}
}

// A sort of several keys: the first sorts first (Find sends {"age": -1, "name": 1}).
func ExampleSort() {
	ctx := context.Background()
	db, err := nexadb.Connect("localhost:6970")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	oldestFirst, err := db.Collection("users").Find(ctx, nil, nexadb.Sort("age", -1), nexadb.Sort("name", 1))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(oldestFirst))
}
