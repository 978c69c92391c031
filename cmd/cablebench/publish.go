package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// item is one publication to send.
type item struct {
	stream, data string
}

// publisher sends one publish request with one or more publications.
type publisher interface {
	publish(ctx context.Context, items []item) error
}

type restPublisher struct {
	url, token string
	client     *http.Client
}

func newRESTPublisher(api, token string, conns int) *restPublisher {
	tr := &http.Transport{MaxIdleConnsPerHost: conns}
	if u, err := url.Parse(api); err == nil && u.Scheme == "https" {
		tr.TLSClientConfig = tlsConfig(u.Hostname()) // loopback, as for wss://
	}
	return &restPublisher{url: api + "/publish", token: token, client: &http.Client{Transport: tr}}
}

// encodeItems is the publish body of items in AnyCable's broadcast format:
// one publication object, or an array of them.
func encodeItems(items []item) []byte {
	type pub struct {
		Stream string `json:"stream"`
		Data   string `json:"data"`
	}
	if len(items) == 1 {
		body, _ := json.Marshal(pub{items[0].stream, items[0].data})
		return body
	}
	all := make([]pub, len(items))
	for i, it := range items {
		all[i] = pub{it.stream, it.data}
	}
	body, _ := json.Marshal(all)
	return body
}

func (p *restPublisher) publish(ctx context.Context, items []item) error {
	body := encodeItems(items)
	req, _ := http.NewRequestWithContext(ctx, "POST", p.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	// Read to the end so the keep-alive connection is reused.
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("publish answered %d", resp.StatusCode)
	}
	return nil
}

type grpcPublisher struct {
	client cablehubv1.CableServiceClient
	token  string
}

func newGRPCPublisher(addr, token string) (*grpcPublisher, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	return &grpcPublisher{client: cablehubv1.NewCableServiceClient(conn), token: token}, nil
}

func (p *grpcPublisher) publish(ctx context.Context, items []item) error {
	req := &cablehubv1.PublishRequest{Publications: make([]*cablehubv1.Publication, len(items))}
	for i, it := range items {
		req.Publications[i] = &cablehubv1.Publication{Stream: it.stream, Data: it.data}
	}
	if p.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+p.token)
	}
	_, err := p.client.Publish(ctx, req)
	return err
}
