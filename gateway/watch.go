package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/api"
	"github.com/cablehub/cablehub/server/jsonerr"
)

// watch answers GET {prefix}/watch/{stream}: the Watch RPC, called through
// the gateway's connection (so the server's stream interceptors run), as
// newline-delimited JSON. grpc-gateway's own streaming answer wraps each
// message in {"result": …} and writes its status only with the first
// message; this one answers as soon as the watch is live (the RPC's
// headers), so a caller knows from the 200 that what is published next
// reaches it, writes each publication as the object itself, and answers a
// refused watch with the status and error body of any other call (409
// with the stream's position for a since that cannot be served).
func (g *Gateway) watch(w http.ResponseWriter, r *http.Request) {
	req, err := watchRequest(r, g.opts.Prefix+"/watch/")
	if err != nil {
		jsonerr.WriteStatus(w, err)
		return
	}
	ctx := r.Context()
	if auth := r.Header.Get("Authorization"); auth != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", auth)
	}
	if tok := consoleSession(g.opts, r); tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, api.SessionMetadata, tok)
	}
	stream, err := cablehubv1.NewCableServiceClient(g.opts.Conn).Watch(ctx, req)
	if err != nil {
		jsonerr.WriteStatus(w, err)
		return
	}
	hdr, err := stream.Header()
	if err == nil && len(hdr.Get(api.WatchHeader)) == 0 {
		// No headers: the call failed before it went live.
		_, err = stream.Recv()
		if err == nil || errors.Is(err, io.EOF) {
			err = status.Error(codes.Internal, "the watch ended before it went live")
		}
	}
	if err != nil {
		jsonerr.WriteStatus(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	var line bytes.Buffer
	for {
		msg, err := stream.Recv()
		line.Reset()
		switch {
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			st := status.Convert(err)
			if ctx.Err() != nil {
				return // the caller left
			}
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": st.Code(), "message": st.Message()}})
			line.Write(b)
		default:
			b, err := jsonMarshaler{}.Marshal(msg)
			if err != nil {
				return
			}
			line.Write(b)
		}
		line.WriteByte('\n')
		if _, werr := w.Write(line.Bytes()); werr != nil || err != nil {
			return
		}
		rc.Flush()
	}
}

// watchRequest reads a watch's stream (the percent-decoded segment after
// base) and its query: epoch and since.
func watchRequest(r *http.Request, base string) (*cablehubv1.WatchRequest, error) {
	seg, _ := strings.CutPrefix(r.URL.EscapedPath(), base)
	name, err := url.PathUnescape(seg)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "malformed percent-escape in the stream name: %v", err)
	}
	q := r.URL.Query()
	req := &cablehubv1.WatchRequest{Stream: name, Epoch: q.Get("epoch")}
	if v := q.Get("since"); v != "" {
		since, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "since must be an offset (an unsigned integer), got %q", v)
		}
		req.Since = &since
	}
	return req, nil
}
