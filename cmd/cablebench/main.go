// Command cablebench is Cablehub's load tool. It opens N WebSocket clients
// against servers on loopback (spread over the --url list), each waiting
// for its welcome and subscribing to one of --streams public or --signed
// streams, and reports the connect+welcome+subscribe rate and the server's
// resident memory per idle subscribed connection and its CPU time while
// the clients connected and while publishing (read from /proc/<pid>).
// With --rpc_channel the clients instead identify themselves by a user
// cookie (or query parameter) and subscribe to that application channel,
// so every connect and subscribe is an RPC call the server makes to its
// back end; nothing Cablehub-specific is then needed of the server (no
// $pubsub, no API unless publishing), so AnyCable can be measured alike.
// With --sse (--transport sse) the clients open Server-Sent Events streams
// instead (sseclient.go): a GET of the events endpoint (--url, e.g.
// http://127.0.0.1:8080/events) with ?signed_stream=, ?stream= or
// ?identifier= (--rpc_channel), subscribed at their confirm_subscription
// event and receiving the publications as unnamed events, from Cablehub
// and AnyCable alike.
// With --pusher (--transport pusher) the clients are Pusher Channels
// clients (pusherclient.go) of the app --pusher_key/--pusher_secret/
// --pusher_app_id: --url is the app's WebSocket URL, e.g.
// ws://127.0.0.1:8080/app/key-1 (one without a path gets /app/<key>),
// and client i waits for pusher:connection_established, subscribes to the
// channel of stream i%--streams (<stream>, private-<stream> or
// presence-<stream> by --pusher_channel_type, signed with the secret,
// as presence member "<i>") and is subscribed at
// pusher_internal:subscription_succeeded. Until the publish phase, and
// during --hold, the clients are read on (answering the server's
// pusher:ping, counting presence member events), as live clients would.
// With --messages it then publishes through the REST API (--api), gRPC
// (--grpc) or one of AnyCable's broadcast adapters (--broadcast), at
// --rate or back to back, optionally --batch'ed, and reports
// delivered/expected, publish→receive latency percentiles, fan-out
// completion per message and deliveries/s; it exits non-zero when anything
// is lost. To Pusher clients it publishes {"event":"bench","data":...}
// through those, or the event "bench" through the Pusher HTTP API
// (--publish pusher: a signed POST /apps/<id>/events at --pusher_api).
//
// More clients than one process may open (20,000 files) take several
// processes (expect.go): each connects its share with --expect N from its
// own --local_addr and --client_offset, creates its --ready_file, and
// receives what one more process (--clients 0 --messages N) publishes;
// `cablebench merge` makes one result of their --raw files.
//
// `cablebench storm` is a reconnect storm (storm.go): --clients clients
// (10,000 by default) dial and subscribe all at once, with --signed stream
// names and/or a --jwt token each; a refused client (connection refused or
// reset, a non-101 answer, a timeout, a disconnect or reject_subscription)
// retries with jittered exponential backoff as @anycable/core does. It
// reports the time until all are subscribed, connect and handshake time
// percentiles, refusals by kind, and the server's CPU seconds during the
// storm and RSS (--pid); it exits non-zero when not all are subscribed
// within --timeout.
//
// `cablebench rpc-backend` instead serves a minimal AnyCable RPC
// application over gRPC and HTTP (rpcbackend.go), for measuring a server's
// RPC hop.
//
// Its WebSocket client is its own (wsclient.go) and, on Linux, reads all
// connections through epoll (receive_linux.go), so that on a shared machine
// the cores go to the server being measured.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	run := run
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "rpc-backend":
			run = func() error { return runRPCBackend(os.Args[2:]) }
		case "storm":
			run = func() error { return runStorm(os.Args[2:], os.Stdout, os.Stderr) }
		case "merge":
			run = func() error { return runMerge(os.Args[2:], os.Stdout) }
		}
	}
	flag.Usage = usage
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cablebench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(flag.CommandLine.Output(), `usage: cablebench [flags]              connect, subscribe, publish and measure
       cablebench storm [flags]        a reconnect storm (cablebench storm --help)
       cablebench rpc-backend [flags]  a minimal AnyCable RPC back end (cablebench rpc-backend --help)
       cablebench merge FILE...        one result of several --expect processes' --raw files

Transports: Action Cable over WebSocket (default), Server-Sent Events
(--sse) or Pusher Channels (--pusher), e.g.
  cablebench --pusher --url ws://127.0.0.1:8080/app/key-1 --pusher_channel_type presence \
    --clients 2000 --messages 100 --api http://127.0.0.1:8080/api --token <API token>
  cablebench --pusher --pusher_channel_type private --messages 100 --publish pusher

Flags:
`)
	flag.PrintDefaults()
}

func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(u.Hostname()); (ip == nil || !ip.IsLoopback()) && u.Hostname() != "localhost" {
		return fmt.Errorf("%q is not a loopback address", raw)
	}
	return nil
}

// benchOptions are the settings of cablebench's main mode, from its flags.
type benchOptions struct {
	// payloadSize is --payload_size.
	payloadSize int
	// compress offers permessage-deflate (--compress); inflate serves
	// the clients the server agreed it with.
	compress    bool
	inflate     *inflater
	urls        []string
	clients     int
	concurrency int // connections opened, and publish requests sent, at once
	stream      string
	streams     int
	signSecret  string
	protocol    string
	pid         int // server process, 0: not measured
	settle      time.Duration
	api         string
	grpcAddr    string
	broadcast   string
	bcChannel   string
	batch       int
	token       string
	messages    int
	rate        float64
	timeout     time.Duration
	asJSON      bool
	hold        time.Duration
	rpcChannel  string
	rpcUser     string
	sse         bool           // clients open event streams (GET with the subscription in the query) instead of WebSockets
	pusher      *pusherOptions // Pusher clients (--pusher), nil otherwise
	publishVia  string         // --publish: "" (by the flags given), api, grpc, broadcast or pusher
	// clientOffset is --client_offset: client i is client clientOffset+i
	// of all the processes of one run (its stream, its RPC user).
	clientOffset int
	// expect is --expect: publications another process publishes, which
	// this one only receives; readyFile (--ready_file) is created when
	// the clients are connected, rawFile (--raw) gets the deliveries for
	// `cablebench merge`.
	expect    int
	readyFile string
	rawFile   string
}

// parseFlags reads the main mode's flags from the command line (exiting
// on --help or an unknown flag, as flag.Parse does) and checks them,
// failing on the first that is out of bounds, not on loopback, or
// contradicts another. The publish flags are checked by o.publisher.
func parseFlags() (benchOptions, error) {
	var o benchOptions
	targets := flag.String("url", "ws://127.0.0.1:8080/cable", "WebSocket URLs, comma-separated; clients are spread over them (loopback only)")
	flag.IntVar(&o.clients, "clients", 1000, "number of clients (0..20000)")
	flag.IntVar(&o.concurrency, "concurrency", 64, "connections opened (and publishes sent) at once")
	flag.StringVar(&o.stream, "stream", "bench", "stream the clients subscribe to (with --streams N: <stream>-0 .. <stream>-N-1, client i on i%N)")
	flag.IntVar(&o.streams, "streams", 1, "number of streams, 1..100000; publications go round-robin over them")
	flag.StringVar(&o.signSecret, "signed", "", "subscribe with signed stream names made with this secret (--streams_secret) instead of public ones")
	flag.StringVar(&o.protocol, "protocol", "actioncable-v1-json", "subprotocol")
	flag.IntVar(&o.pid, "pid", 0, "server process id, for its RSS per connection and its CPU while connecting and while publishing (0: not measured)")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait before reading RSS after connecting")
	flag.StringVar(&o.api, "api", "", "REST API base for publishing, e.g. http://127.0.0.1:8080/api (loopback only)")
	flag.StringVar(&o.grpcAddr, "grpc", "", "publish through gRPC at host:port instead of REST (loopback only)")
	flag.StringVar(&o.broadcast, "broadcast", "", "publish as an application does through a broadcast adapter instead of the API: http=<URL of /_broadcast> (with --token), redis=<Redis URL>, redisx=<Redis URL> or nats=<NATS URL> (loopback only)")
	flag.StringVar(&o.bcChannel, "broadcast_channel", "__anycable__", "with --broadcast redis, redisx or nats: the channel, stream or subject")
	flag.IntVar(&o.batch, "batch", 1, "publications per publish request")
	flag.StringVar(&o.token, "token", "", "API bearer token")
	flag.IntVar(&o.messages, "messages", 0, "publications to send (at most 1000000)")
	flag.Float64Var(&o.rate, "rate", 0, "publications per second (0: back to back)")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "overall time limit")
	flag.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	flag.DurationVar(&o.hold, "hold", 0, "keep the clients connected this long after measuring, for profiling the server (at most 10m)")
	flag.StringVar(&o.rpcChannel, "rpc_channel", "", "subscribe to this application channel through the server's RPC back end (BenchRPCChannel with `cablebench rpc-backend`) instead of a $pubsub stream; client i is user bench-<i>")
	flag.StringVar(&o.rpcUser, "rpc_user", "cookie", "with --rpc_channel, how a client names its user: cookie (Cookie: user=…) or query (?user=…)")
	flag.IntVar(&o.payloadSize, "payload_size", 0, "add an \"xpad\" field of about this many bytes of HTML (a Turbo Stream's kind of text) to each publication, 0..1000000")
	flag.BoolVar(&o.compress, "compress", false, "offer permessage-deflate (as browsers do) and inflate what the server compresses; the result says how many clients agreed")
	flag.BoolVar(&o.sse, "sse", false, "open Server-Sent Events streams instead of WebSockets: GET <url>?signed_stream=… (or ?stream=…, ?identifier=… with --rpc_channel), --url being the events endpoint, e.g. http://127.0.0.1:8080/events")
	usePusher := flag.Bool("pusher", false, "connect as Pusher Channels clients (protocol 7) to the --pusher_* app: --url is the app's WebSocket URL, e.g. ws://127.0.0.1:8080/app/key-1 (a URL without a path gets /app/<--pusher_key>; default ws://127.0.0.1:8080/app/<--pusher_key>); client i subscribes to the channel of stream i%--streams, named <stream> (public), private-<stream> or presence-<stream>")
	transport := flag.String("transport", "ws", "ws, sse (the same as --sse) or pusher (the same as --pusher)")
	flag.StringVar(&o.publishVia, "publish", "", "how to publish: api (--api), grpc (--grpc), broadcast (--broadcast) or pusher (the Pusher HTTP API at --pusher_api, signed with --pusher_key/--pusher_secret); default: --broadcast, else --grpc, else --api, whichever is given")
	localAddr := flag.String("local_addr", "", "dial from this loopback IP address, e.g. 127.0.0.2 (several cablebench processes against one server each take their own, for ephemeral ports)")
	flag.IntVar(&o.clientOffset, "client_offset", 0, "number the clients from here (client i subscribes to stream (offset+i)%streams): for several processes sharing one run's streams evenly")
	flag.IntVar(&o.expect, "expect", 0, "publish nothing: receive this many publications that another process publishes (message n on stream n%streams, as --messages does), with latency from the send time each carries (0..1000000)")
	flag.StringVar(&o.readyFile, "ready_file", "", "with --expect: create this file when every client is connected (and the RSS read)")
	flag.StringVar(&o.rawFile, "raw", "", "with --expect: write the result and every delivery's latency to this file, for `cablebench merge`")
	po := pusherFlags()
	flag.Parse()
	if err := setSourceAddr(*localAddr); err != nil {
		return o, err
	}

	switch *transport {
	case "ws":
	case "sse":
		o.sse = true
	case "pusher":
		*usePusher = true
	default:
		return o, errors.New("--transport must be ws, sse or pusher")
	}
	o.urls = strings.Split(*targets, ",")
	o.inflate = &inflater{}
	if *usePusher {
		o.pusher = po
		if err := o.pusherSetup(flagSet("url"), flagSet("pusher_api")); err != nil {
			return o, err
		}
	}
	for _, u := range o.urls {
		if err := checkLoopback(u); err != nil {
			return o, fmt.Errorf("--url: %v", err)
		}
	}
	return o, o.check()
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// check fails on the first setting out of bounds or contradicting another.
func (o *benchOptions) check() error {
	switch {
	case o.clients < 0 || o.clients > 20000:
		return errors.New("--clients must be 0..20000")
	case o.messages < 0 || o.messages > 1_000_000:
		return errors.New("--messages must be 0..1000000")
	case o.payloadSize < 0 || o.payloadSize > 1_000_000:
		return errors.New("--payload_size must be 0..1000000")
	case o.hold < 0 || o.hold > 10*time.Minute:
		return errors.New("--hold must be 0..10m")
	case (o.hold > 0 || o.pusher != nil) && strings.HasPrefix(o.urls[0], "wss://"):
		return errors.New("--hold and Pusher clients are not supported over wss://")
	case o.streams < 1 || o.streams > 100_000:
		return errors.New("--streams must be 1..100000")
	case o.clientOffset < 0:
		return errors.New("--client_offset must not be negative")
	case o.expect < 0 || o.expect > 1_000_000:
		return errors.New("--expect must be 0..1000000")
	case o.expect > 0 && o.messages > 0:
		return errors.New("--expect is for a process that does not publish: not with --messages")
	case o.clientOffset > 0 && o.messages > 0:
		return errors.New("--client_offset goes with --expect (the publishing process counts its own clients from 0)")
	case (o.readyFile != "" || o.rawFile != "") && o.expect == 0:
		return errors.New("--ready_file and --raw go with --expect")
	case o.batch < 1 || o.batch > 1000:
		return errors.New("--batch must be 1..1000")
	case o.rpcChannel != "" && o.signSecret != "":
		return errors.New("--signed is for $pubsub streams, not --rpc_channel")
	case o.rpcUser != "cookie" && o.rpcUser != "query":
		return errors.New("--rpc_user must be cookie or query")
	case o.pusher != nil && (o.sse || o.rpcChannel != "" || o.signSecret != ""):
		return errors.New("--pusher does not go with --sse, --rpc_channel or --signed")
	case o.publishVia == "pusher" && o.pusher == nil:
		return errors.New("--publish pusher needs --pusher (for the app's key, secret and id)")
	}
	return nil
}

// publisher is what publishes the --messages: the one --publish names,
// or else a broadcast adapter (--broadcast) before gRPC (--grpc) before
// the REST API (--api), on loopback only. It is nil when there is nothing
// to publish, and fails when there is and the one to use is not given.
// For Pusher clients, what goes through the first three is made a Pusher
// event (pusherEventPublisher).
func (o *benchOptions) publisher() (publisher, error) {
	if o.messages == 0 {
		return nil, nil
	}
	pub, err := o.basePublisher()
	if err != nil || o.pusher == nil || o.publishVia == "pusher" {
		return pub, err
	}
	return pusherEventPublisher{pub}, nil
}

// basePublisher is the publisher --publish names, or the first given of
// --broadcast, --grpc and --api.
func (o *benchOptions) basePublisher() (publisher, error) {
	via := o.publishVia
	switch {
	case via != "":
	case o.broadcast != "":
		via = "broadcast"
	case o.grpcAddr != "":
		via = "grpc"
	case o.api != "":
		via = "api"
	default:
		return nil, errors.New("--messages needs --api, --grpc, --broadcast or --publish pusher")
	}
	switch via {
	case "pusher":
		if err := checkLoopback(o.pusher.api); err != nil {
			return nil, fmt.Errorf("--pusher_api: %v", err)
		}
		return newPusherAPIPublisher(o.pusher.api, o.pusher, o.concurrency), nil
	case "broadcast":
		if o.broadcast == "" {
			return nil, errors.New("--publish broadcast needs --broadcast")
		}
		pub, err := newBroadcastPublisher(o.broadcast, o.bcChannel, o.token, o.concurrency)
		if err != nil {
			return nil, fmt.Errorf("--broadcast: %v", err)
		}
		return pub, nil
	case "grpc":
		if o.grpcAddr == "" {
			return nil, errors.New("--publish grpc needs --grpc")
		}
		if err := checkLoopback("grpc://" + o.grpcAddr); err != nil {
			return nil, fmt.Errorf("--grpc: %v", err)
		}
		return newGRPCPublisher(o.grpcAddr, o.token)
	case "api":
		if o.api == "" {
			return nil, errors.New("--publish api needs --api")
		}
		if err := checkLoopback(o.api); err != nil {
			return nil, fmt.Errorf("--api: %v", err)
		}
		return newRESTPublisher(o.api, o.token, o.concurrency), nil
	}
	return nil, fmt.Errorf("--publish %q: use api, grpc, broadcast or pusher", via)
}

// subscriptions are the --streams stream names (--stream alone, or
// <stream>-<i> for more than one) and, index for index, what a client
// sends to subscribe to each: the $pubsub stream, signed with
// --signed's secret if given, or with --rpc_channel that channel with the
// stream as a parameter. With --pusher the streams are the Pusher
// channels' names (private-<stream>, presence-<stream> or <stream>) and
// subs unused: a Pusher client's subscription depends on its socket_id.
func (o *benchOptions) subscriptions() (streams []string, subs []subscription) {
	streams = make([]string, o.streams)
	subs = make([]subscription, o.streams)
	for i := range streams {
		streams[i] = o.stream
		if o.streams > 1 {
			streams[i] = fmt.Sprintf("%s-%d", o.stream, i)
		}
		switch {
		case o.pusher != nil:
			streams[i] = o.pusher.channel(streams[i])
		case o.rpcChannel != "":
			subs[i] = newRPCSubscription(o.rpcChannel, streams[i])
		default:
			subs[i] = newSubscription(streams[i], o.signSecret)
		}
	}
	return streams, subs
}

// run is cablebench's main mode: connect, measure memory, publish. It
// fails when a client cannot connect and subscribe, a publish request
// fails, or a delivery is lost; the report is printed when the clients
// connected, even if publishing then failed.
func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	pub, err := o.publisher()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	res := result{Clients: o.clients, RPCChannel: o.rpcChannel}
	if o.pusher != nil {
		res.Pusher = o.pusher.channelType
	}
	if o.pid > 0 {
		res.RSSBeforeKiB = rssKiB(o.pid)
	}
	streams, subs := o.subscriptions()
	var keep *keeper // reads the Pusher clients until the publish phase
	if o.pusher != nil {
		if keep, err = newKeeper(o.clients); err != nil {
			return err
		}
	}
	cpu := serverCPU(o.pid)
	conns, err := o.connectAll(ctx, streams, subs, keep, &res)
	res.ServerCPUConnectS = cpu()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.nc.Close()
			}
		}
	}()
	if err != nil {
		if keep != nil {
			keep.close()
		}
		return fmt.Errorf("after %d connections: %v", res.Connected, err)
	}
	if o.pid > 0 {
		time.Sleep(o.settle)
		res.RSSAfterKiB = rssKiB(o.pid)
		if res.Connected > 0 {
			res.RSSPerConnBytes = float64(res.RSSAfterKiB-res.RSSBeforeKiB) * 1024 / float64(res.Connected)
		}
	}
	if keep != nil {
		if err := keep.close(); err != nil {
			o.pusher.fill(&res)
			report(res, o.asJSON, o.pid > 0)
			return fmt.Errorf("while idle: %v%s", err, o.pusher.firstErrorNote())
		}
	}
	if o.expect > 0 {
		return o.receiveOnly(ctx, &res, conns, streams)
	}
	if o.messages > 0 {
		cpu = serverCPU(o.pid)
		err := publishPhase(ctx, &res, conns, pub, streams, o.messages, o.batch, o.rate, o.concurrency, o.asJSON, padding(o.payloadSize))
		res.ServerCPUPublishS = cpu()
		if err != nil {
			o.pusher.fill(&res)
			report(res, o.asJSON, o.pid > 0)
			return err
		}
	}
	o.pusher.fill(&res)
	report(res, o.asJSON, o.pid > 0)
	switch {
	case o.hold > 0 && o.pusher != nil:
		// Read on, answering the server's pusher:ping.
		if err := holdConns(conns, o.hold); err != nil {
			return fmt.Errorf("while holding: %v%s", err, o.pusher.firstErrorNote())
		}
	case o.hold > 0:
		time.Sleep(o.hold)
	}
	if res.Delivered < res.Expected {
		return fmt.Errorf("lost %d of %d deliveries", res.Expected-res.Delivered, res.Expected)
	}
	return nil
}

// connectAll connects the clients, o.concurrency at a time: client i, as
// client g = o.clientOffset+i of the run, dials o.urls[g%len(o.urls)] (as
// user bench-<g> with --rpc_channel), waits for its welcome and subscribes
// with subs[g%len(subs)] (a Pusher client to channel
// streams[g%len(streams)], then handed to keep). It records in res
// how many connected and how fast, and shows progress on stderr every
// thousand clients unless --json. conns[i] is client i, nil if it did not
// connect. The first failure stops the connecting and is returned, with
// the connections made until then, for the caller to close.
func (o *benchOptions) connectAll(ctx context.Context, streams []string, subs []subscription, keep *keeper, res *result) (conns []*benchConn, err error) {
	conns = make([]*benchConn, o.clients)
	var next, done atomic.Int64
	var errOnce sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.clients || ctx.Err() != nil {
					return
				}
				g := o.clientOffset + i
				c, cerr := o.connectOne(ctx, g, streams[g%len(streams)], subs[g%len(subs)])
				if cerr == nil && keep != nil {
					conns[i] = c // closed by the caller
					cerr = keep.add(i, c)
				}
				if cerr != nil {
					errOnce.Do(func() { err = cerr })
					return
				}
				conns[i] = c
				if n := done.Add(1); n%1000 == 0 && !o.asJSON {
					fmt.Fprintf(os.Stderr, "\r%d/%d connected", n, o.clients)
				}
			}
		})
	}
	wg.Wait()
	res.ConnectSeconds = time.Since(start).Seconds()
	res.Connected = int(done.Load())
	for _, c := range conns {
		if c != nil && c.deflate != nil {
			res.Compressed++
		}
	}
	if res.ConnectSeconds > 0 {
		res.ConnectsPerSec = float64(res.Connected) / res.ConnectSeconds
	}
	if !o.asJSON && o.clients >= 1000 {
		fmt.Fprintln(os.Stderr)
	}
	return conns, err
}

// connectOne dials client i's URL and subscribes it with sub (a Pusher
// client to stream, its channel); with --rpc_channel the client names its
// user bench-<i> as --rpc_user says.
func (o *benchOptions) connectOne(ctx context.Context, i int, stream string, sub subscription) (*benchConn, error) {
	target, header := o.urls[i%len(o.urls)], ""
	if o.pusher != nil {
		return connectPusher(ctx, target, stream, i, o.pusher)
	}
	if o.rpcChannel != "" {
		var err error
		if target, header, err = identify(target, i, o.rpcUser); err != nil {
			return nil, err
		}
	}
	if o.sse {
		return connectSSE(ctx, target, header, sub)
	}
	if o.compress {
		header += deflateOffer
	}
	return connect(ctx, target, header, o.protocol, sub, o.inflate)
}

// parseMessage finds {"n":..,"t":..} in a broadcast frame, or is it: an
// event stream's data is the publication's payload alone. In an Action
// Cable frame it is the "message"; in a Pusher event the "data", as an
// object (published through a server's API) or as a JSON string
// (published through the Pusher HTTP API, whose data is a string).
func parseMessage(data []byte) (n int, sent int64, ok bool) {
	if rest, ok := bytes.CutPrefix(data, []byte(`{"n":`)); ok {
		return parseNT(rest, `"t":`, `}`)
	}
	for _, key := range [...]string{`"message":{"n":`, `"data":{"n":`} {
		if i := bytes.Index(data, []byte(key)); i >= 0 {
			return parseNT(data[i+len(key):], `"t":`, `}`)
		}
	}
	const quoted = `"data":"{\"n\":`
	if i := bytes.Index(data, []byte(quoted)); i >= 0 {
		return parseNT(data[i+len(quoted):], `\"t\":`, `}"`)
	}
	return 0, 0, false
}

// parseNT reads `<n>,<tKey><t><end>` at the start of rest.
func parseNT(rest []byte, tKey, end string) (n int, sent int64, ok bool) {
	j := bytes.IndexByte(rest, ',')
	if j < 0 {
		return 0, 0, false
	}
	n, err := strconv.Atoi(string(rest[:j]))
	if err != nil {
		return 0, 0, false
	}
	rest, ok = bytes.CutPrefix(rest[j+1:], []byte(tKey))
	if !ok {
		return 0, 0, false
	}
	// The time's digits end at end, or at the "xpad" field's comma.
	k := 0
	for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
		k++
	}
	if k == len(rest) || !(rest[k] == ',' || bytes.HasPrefix(rest[k:], []byte(end))) {
		return 0, 0, false
	}
	sent, err = strconv.ParseInt(string(rest[:k]), 10, 64)
	return n, sent, err == nil
}
