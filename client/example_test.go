package client_test

import (
	"context"
	"errors"
	"log"

	"google.golang.org/grpc/codes"

	"github.com/cablehub/cablehub/client"
)

// A back end publishing to a stream and reading who is present. (No Output
// comment: it needs a running server, so go test only compiles it.)
func Example() {
	c, err := client.New("127.0.0.1:8080", client.Options{Secret: "s3cr3t"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if err := c.Publish(ctx, "chat/1", `{"text":"hello"}`, client.PublishOptions{}); err != nil {
		var e *client.Error
		if errors.As(err, &e) && e.Code == codes.Unauthenticated {
			log.Fatal("wrong secret")
		}
		log.Fatal(err)
	}
	p, err := c.Presence(ctx, "chat/1")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range p.Records {
		log.Printf("%s is here: %v", r.ID, r.Info)
	}
}
