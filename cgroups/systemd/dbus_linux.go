package systemd

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	dest      = "org.freedesktop.systemd1"
	path      = dbus.ObjectPath("/org/freedesktop/systemd1")
	iface     = "org.freedesktop.systemd1.Manager"
	noSuch    = "org.freedesktop.systemd1.NoSuchUnit"
	jobWait   = 30 * time.Second
	privSock  = "/run/systemd/private"
	systemBus = "/run/dbus/system_bus_socket"
)

// Property is one unit property for StartTransientUnit.
type Property struct {
	Name  string
	Value dbus.Variant
}

// Prop makes a Property.
func Prop(name string, v any) Property { return Property{name, dbus.MakeVariant(v)} }

// Conn is a connection to systemd's manager. It does not subscribe to
// systemd's signals: a subscriber that stops reading them stalls, so job
// completion is observed by polling the unit's ActiveState instead.
type Conn struct {
	c *dbus.Conn
}

// Connect talks to systemd: root uses systemd's private socket (no bus
// daemon needed, as runc does), others the system bus.
func Connect() (*Conn, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	var c *dbus.Conn
	var err error
	if _, serr := os.Stat(privSock); os.Geteuid() == 0 && serr == nil {
		c, err = dbus.Dial("unix:path=" + privSock)
		if err == nil {
			if err = c.Auth(nil); err != nil {
				c.Close()
			}
		}
	} else {
		c, err = dbus.Dial("unix:path=" + systemBus)
		if err == nil {
			if err = c.Auth(nil); err == nil {
				err = c.Hello()
			}
			if err != nil {
				c.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return &Conn{c: c}, nil
}

// Close ends the connection.
func (c *Conn) Close() error { return c.c.Close() }

func (c *Conn) manager() dbus.BusObject { return c.c.Object(dest, path) }

// activeState reads the unit's ActiveState ("" when systemd does not
// have the unit loaded).
func (c *Conn) activeState(name string) (string, error) {
	var p dbus.ObjectPath
	err := c.manager().Call(iface+".GetUnit", 0, name).Store(&p)
	var de dbus.Error
	if errors.As(err, &de) && de.Name == noSuch {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	v, err := c.c.Object(dest, p).GetProperty("org.freedesktop.systemd1.Unit.ActiveState")
	if err != nil {
		return "", err
	}
	s, _ := v.Value().(string)
	return s, nil
}

// waitState polls until the unit's ActiveState is one of want.
func (c *Conn) waitState(name, what string, want ...string) (string, error) {
	deadline := time.Now().Add(jobWait)
	for delay := time.Millisecond; ; delay = min(delay*2, 50*time.Millisecond) {
		st, err := c.activeState(name)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		for _, w := range want {
			if st == w {
				return st, nil
			}
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%s: unit still %q after %v", what, st, jobWait)
		}
		time.Sleep(delay)
	}
}

// StartScope starts the transient scope unit name holding pid in slice,
// with Delegate=yes and extra properties, and waits until it runs.
func (c *Conn) StartScope(name, slice string, pid int, extra ...Property) error {
	props := []Property{
		Prop("Description", "berth container "+strings.TrimSuffix(name, ".scope")),
		Prop("Slice", slice),
		Prop("Delegate", true),
		Prop("PIDs", []uint32{uint32(pid)}),
		Prop("DefaultDependencies", false),
	}
	props = append(props, extra...)
	aux := []struct {
		Name  string
		Props []Property
	}{}
	var job dbus.ObjectPath
	err := c.manager().Call(iface+".StartTransientUnit", 0, name, "replace", props, aux).Store(&job)
	if err != nil {
		return fmt.Errorf("start systemd scope %s: %w", name, err)
	}
	st, err := c.waitState(name, "start systemd scope "+name, "active", "failed", "")
	if err == nil && st != "active" {
		err = fmt.Errorf("start systemd scope %s: the unit is %q", name, st)
	}
	return err
}

// StopUnit stops name and forgets a failed state; a unit systemd does not
// know is already gone.
func (c *Conn) StopUnit(name string) error {
	var job dbus.ObjectPath
	err := c.manager().Call(iface+".StopUnit", 0, name, "replace").Store(&job)
	var de dbus.Error
	if errors.As(err, &de) && de.Name == noSuch {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop systemd unit %s: %w", name, err)
	}
	_, err = c.waitState(name, "stop systemd unit "+name, "inactive", "failed", "")
	c.manager().Call(iface+".ResetFailedUnit", 0, name)
	return err
}

// UnitLoaded reports whether systemd has the unit loaded.
func (c *Conn) UnitLoaded(name string) (bool, error) {
	var p dbus.ObjectPath
	err := c.manager().Call(iface+".GetUnit", 0, name).Store(&p)
	var de dbus.Error
	if errors.As(err, &de) && de.Name == noSuch {
		return false, nil
	}
	return err == nil, err
}
