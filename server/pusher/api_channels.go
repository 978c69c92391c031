package pusher

// This file holds the HTTP API's endpoints that read channels and the one
// that disconnects a user: GET /apps/<id>/channels, .../channels/<name>,
// .../channels/<name>/users and POST .../users/<id>/terminate_connections.

import (
	"net/url"
	"strings"
)

// queryParam is the first value of the query parameter key, its name compared
// without case as the signature compares it ("" when absent).
func queryParam(q url.Values, key string) string {
	if v, ok := q[key]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range q {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// userCount is the number of unique users on a presence channel.
func (a *api) userCount(r *apiRequest, channel string) (int, *RequestError) {
	p, err := a.b.Presence(r.ctx, channel)
	if err != nil {
		return 0, a.backendError(r, "while reading the presence of a channel", err)
	}
	if p == nil {
		return 0, nil
	}
	return p.Total, nil
}

// subscriptions returns channel's subscription count and whether it is
// occupied (listed by the Backend).
func (a *api) subscriptions(r *apiRequest, channel string) (int, bool, *RequestError) {
	list, err := a.b.Channels(r.ctx, channel)
	if err != nil {
		return 0, false, a.backendError(r, "while listing the channels", err)
	}
	for _, c := range list {
		if c.Name == channel {
			n, err := a.b.Subscriptions(r.ctx, channel)
			if err != nil {
				return 0, false, a.backendError(r, "while counting a channel's subscriptions", err)
			}
			return n, true, nil
		}
	}
	return 0, false, nil
}

// attrsOf returns the attributes info asks for of channel: user_count
// from its presence (for a presence channel only: an event triggered on
// several channels answers it for those that have it), subscription_count
// from the Backend's channel list (0 when the channel is not occupied).
func (a *api) attrsOf(r *apiRequest, channel string, info infoSet) (channelAttrs, *RequestError) {
	var at channelAttrs
	if info.userCount && isPresence(channel) {
		n, rerr := a.userCount(r, channel)
		if rerr != nil {
			return at, rerr
		}
		at.UserCount = &n
	}
	if info.subscriptionCount {
		n, _, rerr := a.subscriptions(r, channel)
		if rerr != nil {
			return at, rerr
		}
		at.SubscriptionCount = &n
	}
	return at, nil
}

// channels serves GET /apps/<id>/channels: the occupied channels, those
// starting with filter_by_prefix when it is given, as
// {"channels":{"<name>":{}}}, or {"<name>":{"user_count":N}} with
// info=user_count, which needs a filter_by_prefix starting with presence-
// (400 otherwise; user_count is the only attribute).
func (a *api) channels(r *apiRequest) (any, *RequestError) {
	prefix := queryParam(r.query, "filter_by_prefix")
	info, rerr := parseInfo(queryParam(r.query, "info"), false)
	if rerr != nil {
		return nil, rerr
	}
	if info.userCount && !isPresence(prefix) {
		return nil, badRequest("Info user_count is only available when filter_by_prefix starts with %q", presencePrefix)
	}
	list, err := a.b.Channels(r.ctx, prefix)
	if err != nil {
		return nil, a.backendError(r, "while listing the channels", err)
	}
	out := make(map[string]channelAttrs, len(list))
	for _, c := range list {
		if !strings.HasPrefix(c.Name, prefix) {
			continue // not asked for, whatever the Backend thinks
		}
		var at channelAttrs
		if info.userCount {
			n, rerr := a.userCount(r, c.Name)
			if rerr != nil {
				return nil, rerr
			}
			at.UserCount = &n
		}
		out[c.Name] = at
	}
	return map[string]any{"channels": out}, nil
}

// channel serves GET /apps/<id>/channels/<name>: {"occupied":bool} with
// the attributes info asks for, user_count (presence channels only, 400
// otherwise) and subscription_count.
func (a *api) channel(r *apiRequest) (any, *RequestError) {
	name := r.param
	if !validChannel(name) {
		return nil, badRequest("Invalid channel name %s", quoteShort(name))
	}
	info, rerr := parseInfo(queryParam(r.query, "info"), true)
	if rerr != nil {
		return nil, rerr
	}
	if info.userCount && !isPresence(name) {
		return nil, badRequest("Info user_count is only available for presence channels")
	}
	subs, occupied, rerr := a.subscriptions(r, name)
	if rerr != nil {
		return nil, rerr
	}
	res := struct {
		Occupied bool `json:"occupied"`
		channelAttrs
	}{Occupied: occupied}
	if info.userCount {
		n, rerr := a.userCount(r, name)
		if rerr != nil {
			return nil, rerr
		}
		res.UserCount = &n
	}
	if info.subscriptionCount {
		res.SubscriptionCount = &subs
	}
	return res, nil
}

// users serves GET /apps/<id>/channels/<name>/users: the ids present on a
// presence channel (400 for another channel), {"users":[{"id":"<id>"}, ...]}
// sorted by id; 501 when the broker keeps no presence.
func (a *api) users(r *apiRequest) (any, *RequestError) {
	name := r.param
	if !validChannel(name) {
		return nil, badRequest("Invalid channel name %s", quoteShort(name))
	}
	if !isPresence(name) {
		return nil, badRequest("Users can only be listed for presence channels")
	}
	p, err := a.b.Presence(r.ctx, name)
	if err != nil {
		return nil, a.backendError(r, "while reading the presence of a channel", err)
	}
	type user struct {
		ID string `json:"id"`
	}
	users := []user{}
	if p != nil {
		for _, rec := range p.Records {
			users = append(users, user{rec.ID})
		}
	}
	return map[string]any{"users": users}, nil
}

// terminate serves POST /apps/<id>/users/<user_id>/terminate_connections:
// it closes every connection of the user (the body is not read) and
// answers {}.
func (a *api) terminate(r *apiRequest) (any, *RequestError) {
	if err := a.b.TerminateUser(r.ctx, r.param); err != nil {
		return nil, a.backendError(r, "while terminating the user's connections", err)
	}
	return struct{}{}, nil
}
