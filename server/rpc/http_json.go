package rpc

import (
	"encoding/json"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
)

// The JSON bodies of HTTP RPC are AnyCable's protobuf structs run
// through Go's encoding/json — not the proto3 JSON mapping. The mirror
// structs below pin that wire format here rather than relying on
// the json tags protoc-gen-go happens to emit: snake_case proto names,
// omitempty everywhere (zero values absent), fields in field-number order,
// Status as a JSON number. encoding/json supplies the rest: map keys
// sorted byte-wise, <, > and & escaped as \u003c, \u003e, \u0026, invalid
// UTF-8 replaced by U+FFFD, and empty-string map values kept ("k":""),
// which carries the rule that an empty value deletes a state key.
//
// Decoding uses the same structs with encoding/json's matching rules, as
// AnyCable does: keys match case-insensitively but underscores count
// (errorMsg is an unknown key), unknown keys are ignored, a missing status
// is ERROR (0), and a status that is not a JSON integer fails the call.

type jsonEnv struct {
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Cstate  map[string]string `json:"cstate,omitempty"`
	Istate  map[string]string `json:"istate,omitempty"`
}

type jsonEnvResponse struct {
	Cstate map[string]string `json:"cstate,omitempty"`
	Istate map[string]string `json:"istate,omitempty"`
}

type jsonPresence struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Info string `json:"info,omitempty"`
	TTL  uint32 `json:"ttl,omitempty"`
}

type jsonConnectionRequest struct {
	Env *jsonEnv `json:"env,omitempty"`
}

type jsonConnectionResponse struct {
	Status        int32            `json:"status,omitempty"`
	Identifiers   string           `json:"identifiers,omitempty"`
	Transmissions []string         `json:"transmissions,omitempty"`
	ErrorMsg      string           `json:"error_msg,omitempty"`
	Env           *jsonEnvResponse `json:"env,omitempty"`
}

type jsonCommandMessage struct {
	Command               string   `json:"command,omitempty"`
	Identifier            string   `json:"identifier,omitempty"`
	ConnectionIdentifiers string   `json:"connection_identifiers,omitempty"`
	Data                  string   `json:"data,omitempty"`
	Env                   *jsonEnv `json:"env,omitempty"`
}

type jsonCommandResponse struct {
	Status         int32            `json:"status,omitempty"`
	Disconnect     bool             `json:"disconnect,omitempty"`
	StopStreams    bool             `json:"stop_streams,omitempty"`
	Streams        []string         `json:"streams,omitempty"`
	Transmissions  []string         `json:"transmissions,omitempty"`
	ErrorMsg       string           `json:"error_msg,omitempty"`
	Env            *jsonEnvResponse `json:"env,omitempty"`
	StoppedStreams []string         `json:"stopped_streams,omitempty"`
	Presence       *jsonPresence    `json:"presence,omitempty"`
}

type jsonDisconnectRequest struct {
	Identifiers   string   `json:"identifiers,omitempty"`
	Subscriptions []string `json:"subscriptions,omitempty"`
	Env           *jsonEnv `json:"env,omitempty"`
}

type jsonDisconnectResponse struct {
	Status   int32  `json:"status,omitempty"`
	ErrorMsg string `json:"error_msg,omitempty"`
}

func envToJSON(e *anycablepb.Env) *jsonEnv {
	if e == nil {
		return nil
	}
	return &jsonEnv{URL: e.GetUrl(), Headers: e.GetHeaders(), Cstate: e.GetCstate(), Istate: e.GetIstate()}
}

func envResponseFromJSON(e *jsonEnvResponse) *anycablepb.EnvResponse {
	if e == nil {
		return nil
	}
	return &anycablepb.EnvResponse{Cstate: e.Cstate, Istate: e.Istate}
}

// encodeConnect is the body of POST …/connect.
func encodeConnect(req *anycablepb.ConnectionRequest) ([]byte, error) {
	return json.Marshal(jsonConnectionRequest{Env: envToJSON(req.GetEnv())})
}

// encodeCommand is the body of POST …/command.
func encodeCommand(req *anycablepb.CommandMessage) ([]byte, error) {
	return json.Marshal(jsonCommandMessage{
		Command:               req.GetCommand(),
		Identifier:            req.GetIdentifier(),
		ConnectionIdentifiers: req.GetConnectionIdentifiers(),
		Data:                  req.GetData(),
		Env:                   envToJSON(req.GetEnv()),
	})
}

// encodeDisconnect is the body of POST …/disconnect.
func encodeDisconnect(req *anycablepb.DisconnectRequest) ([]byte, error) {
	return json.Marshal(jsonDisconnectRequest{
		Identifiers:   req.GetIdentifiers(),
		Subscriptions: req.GetSubscriptions(),
		Env:           envToJSON(req.GetEnv()),
	})
}

// decodeConnect parses a 200 reply of …/connect.
func decodeConnect(body []byte) (*anycablepb.ConnectionResponse, error) {
	var r jsonConnectionResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	return &anycablepb.ConnectionResponse{
		Status:        anycablepb.Status(r.Status),
		Identifiers:   r.Identifiers,
		Transmissions: r.Transmissions,
		ErrorMsg:      r.ErrorMsg,
		Env:           envResponseFromJSON(r.Env),
	}, nil
}

// decodeCommand parses a 200 reply of …/command.
func decodeCommand(body []byte) (*anycablepb.CommandResponse, error) {
	var r jsonCommandResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	resp := &anycablepb.CommandResponse{
		Status:         anycablepb.Status(r.Status),
		Disconnect:     r.Disconnect,
		StopStreams:    r.StopStreams,
		Streams:        r.Streams,
		Transmissions:  r.Transmissions,
		ErrorMsg:       r.ErrorMsg,
		Env:            envResponseFromJSON(r.Env),
		StoppedStreams: r.StoppedStreams,
	}
	if p := r.Presence; p != nil {
		resp.Presence = &anycablepb.PresenceResponse{Type: p.Type, Id: p.ID, Info: p.Info, Ttl: p.TTL}
	}
	return resp, nil
}

// decodeDisconnect parses a 200 reply of …/disconnect.
func decodeDisconnect(body []byte) (*anycablepb.DisconnectResponse, error) {
	var r jsonDisconnectResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	return &anycablepb.DisconnectResponse{Status: anycablepb.Status(r.Status), ErrorMsg: r.ErrorMsg}, nil
}
