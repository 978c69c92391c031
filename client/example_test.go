package client_test

// The examples need a running server, so they have no Output comment: go
// test compiles them and runs none.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log"
	"os"
	"time"

	"github.com/cablehub/cablehub/client"
)

// A back end publishing to a stream and reading who is present.
func Example() {
	c, err := client.New("127.0.0.1:8080", client.Options{Secret: "s3cr3t"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	if err := c.Publish(ctx, "chat/1", `{"text":"hello"}`, client.PublishOptions{}); err != nil {
		if errors.Is(err, client.ErrAuth) {
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

// A client of a server behind TLS with a private CA, retrying what fails
// with UNAVAILABLE: its publications get idempotency keys, so a retry
// cannot deliver twice.
func ExampleNew() {
	pem, err := os.ReadFile("ca.crt")
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := client.New("https://cable.example.com:8080", client.Options{
		APISecret: os.Getenv("CABLEHUB_API_SECRET"),
		TLS:       &tls.Config{RootCAs: roots},
		Timeout:   2 * time.Second,
		Retries:   3,
	})
	if err != nil {
		log.Fatal(err) // a bad address, or both secrets given: errors.Is(err, client.ErrInvalidArgument)
	}
	defer c.Close()
	err = c.PublishBatch(context.Background(), []client.Publication{
		{Stream: "orders", Data: `{"id":1}`, PublishOptions: client.PublishOptions{IdempotencyKey: "order-1"}},
		{Stream: "orders", Data: `{"note":"typing"}`, PublishOptions: client.PublishOptions{Transient: true}},
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Consuming a stream live: the loop runs until ctx ends or it breaks, and
// survives server restarts; a position it cannot resume from ends it with
// ErrPosition and the stream's current position.
func ExampleClient_Watch() {
	c, err := client.New("127.0.0.1:8080", client.Options{Secret: "s3cr3t"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()

	since := &client.Position{Epoch: "Zk3x", Offset: 41} // saved from an earlier run
	for pub, err := range c.Watch(ctx, "orders", client.WatchOptions{Since: since}) {
		var e *client.Error
		switch {
		case errors.As(err, &e) && errors.Is(err, client.ErrPosition):
			log.Printf("history lost since %v: start over from %v", since, e.Position)
			return
		case err != nil:
			log.Print(err) // ctx's error after a minute, or ErrAuth, ErrClosed...
			return
		}
		log.Printf("%s@%s/%d: %s", pub.Stream, pub.Epoch, pub.Offset, pub.Data)
		if pub.Data == `"stop"` {
			break // cancels the call
		}
	}
}

// Reading a stream's history: the latest publications, then what follows
// a known position.
func ExampleClient_History() {
	c, err := client.New("127.0.0.1:8080", client.Options{Secret: "s3cr3t"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	h, err := c.History(ctx, "orders", client.HistoryOptions{Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("orders is at %s/%d; the last %d:", h.Epoch, h.Offset, len(h.Publications))
	for _, p := range h.Publications {
		log.Printf("%d: %s", p.Offset, p.Data)
	}
	next, err := c.History(ctx, "orders", client.HistoryOptions{Since: &client.Position{Epoch: h.Epoch, Offset: h.Offset}})
	switch {
	case errors.Is(err, client.ErrPosition):
		log.Fatal("the epoch changed meanwhile: ", err)
	case err != nil:
		log.Fatal(err)
	}
	log.Printf("%d more since", len(next.Publications))
}

// Counting who is on a stream without listing them.
func ExampleClient_PresenceStats() {
	c, err := client.New("127.0.0.1:8080", client.Options{Secret: "s3cr3t"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.PresenceStats(context.Background(), "chat/1")
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d users in %d sessions", s.Users, s.Sessions)
}

// The streams with subscribers anywhere in the cluster, and its nodes.
func ExampleClient_ListStreams() {
	c, err := client.New("127.0.0.1:8080", client.Options{Secret: "s3cr3t"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	streams, err := c.ListStreams(ctx, client.ListStreamsOptions{Prefix: "chat/", Limit: 50})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range streams.Streams {
		log.Printf("%s: %d subscribers", s.Name, s.Subscribers)
	}
	if len(streams.UnavailableNodes) > 0 {
		log.Printf("not counted: nodes %v did not answer", streams.UnavailableNodes)
	}

	info, err := c.Info(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range info.Nodes {
		log.Printf("node %s (%s, up %v): %d connections", n.ID, n.Version, n.Uptime, n.Connections)
	}
}

// Closing a user's sessions on every node.
func ExampleClient_Disconnect() {
	c, err := client.New("127.0.0.1:8080", client.Options{Secret: "s3cr3t"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Disconnect(context.Background(), `{"user_id":42}`, false); err != nil {
		log.Fatal(err)
	}
}
