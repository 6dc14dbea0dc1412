package engine

import (
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
)

// Events is the daemon's event log: a bounded in-memory history (for
// since/until replays) and live subscribers.
type Events struct {
	mu      sync.Mutex
	history []events.Message
	subs    map[chan events.Message]struct{}
}

const eventHistory = 1024

// NewEvents makes an empty event log.
func NewEvents() *Events {
	return &Events{subs: map[chan events.Message]struct{}{}}
}

// Publish records and broadcasts an event. Slow subscribers lose events
// rather than block the daemon.
func (ev *Events) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := events.Message{
		Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
	}
	if typ == events.ContainerEventType || typ == events.ImageEventType {
		m.Status = string(action) //nolint:staticcheck // API 1.41 clients read it
		m.ID = id                 //nolint:staticcheck
		if img, ok := attrs["image"]; ok && typ == events.ContainerEventType {
			m.From = img //nolint:staticcheck
		}
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.history = append(ev.history, m)
	if len(ev.history) > eventHistory {
		ev.history = ev.history[len(ev.history)-eventHistory:]
	}
	for ch := range ev.subs {
		select {
		case ch <- m:
		default:
		}
	}
}

// Subscribe returns past events (oldest first) and a channel of new ones;
// cancel ends the subscription.
func (ev *Events) Subscribe() ([]events.Message, <-chan events.Message, func()) {
	ch := make(chan events.Message, 256)
	ev.mu.Lock()
	past := append([]events.Message(nil), ev.history...)
	ev.subs[ch] = struct{}{}
	ev.mu.Unlock()
	return past, ch, func() {
		ev.mu.Lock()
		delete(ev.subs, ch)
		ev.mu.Unlock()
	}
}

// Listeners is the number of live subscribers.
func (ev *Events) Listeners() int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return len(ev.subs)
}

// containerEvent publishes a container event with Docker's attributes
// (image, name, labels).
func (e *Engine) containerEvent(c *Container, action events.Action, extra map[string]string) {
	attrs := map[string]string{"image": c.ImageName, "name": c.Name[1:]}
	if c.Config != nil {
		for k, v := range c.Config.Labels {
			attrs[k] = v
		}
	}
	for k, v := range extra {
		attrs[k] = v
	}
	e.Events.Publish(events.ContainerEventType, action, c.ID, attrs)
}

func itoa(n int) string { return strconv.Itoa(n) }
