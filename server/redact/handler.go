package redact

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Logger returns log with every record's credentials masked (Handler).
func Logger(log *slog.Logger) *slog.Logger {
	if _, ok := log.Handler().(handler); ok {
		return log
	}
	return slog.New(Handler(log.Handler()))
}

// Handler wraps h so that the message and every attribute value of each
// record (strings, errors, anything else as it would be printed) have
// their credentials masked (Credentials) before h sees them, and so do the
// attributes given to WithAttrs. Libraries log URLs their own way (nats.go
// redacts passwords but not tokens; an error may quote a URL whole), so
// the process's log masks them all rather than trusting each line.
//
// A record with no '@' in it is handed on as it is.
func Handler(h slog.Handler) slog.Handler {
	if r, ok := h.(handler); ok {
		return r
	}
	return handler{h}
}

type handler struct{ inner slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	dirty := strings.IndexByte(r.Message, '@') >= 0
	if !dirty {
		r.Attrs(func(a slog.Attr) bool {
			_, dirty = attr(a)
			return !dirty
		})
	}
	if !dirty {
		return h.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, Credentials(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		a, _ = attr(a)
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var out []slog.Attr // a copy, once an attribute is masked
	for i, a := range attrs {
		masked, changed := attr(a)
		if changed && out == nil {
			out = append([]slog.Attr(nil), attrs...)
		}
		if out != nil {
			out[i] = masked
		}
	}
	if out == nil {
		out = attrs
	}
	return handler{h.inner.WithAttrs(out)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.inner.WithGroup(name)} }

// attr is a with its value's credentials masked, and whether there were
// any: a string as such, a group attribute by attribute, any other value
// (an error, a URL, a slice...) as the text a handler would print for it,
// when that text has credentials. Values without are kept as they are.
func attr(a slog.Attr) (slog.Attr, bool) {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); strings.IndexByte(s, '@') >= 0 {
			return slog.String(a.Key, Credentials(s)), true
		}
	case slog.KindGroup:
		group := v.Group()
		out := make([]slog.Attr, len(group))
		changed := false
		for i, g := range group {
			var c bool
			out[i], c = attr(g)
			changed = changed || c
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}, changed
	case slog.KindAny:
		var s string
		if err, ok := v.Any().(error); ok {
			s = err.Error()
		} else {
			s = fmt.Sprintf("%+v", v.Any())
		}
		if strings.IndexByte(s, '@') >= 0 {
			return slog.String(a.Key, Credentials(s)), true
		}
	}
	return slog.Attr{Key: a.Key, Value: v}, false
}
