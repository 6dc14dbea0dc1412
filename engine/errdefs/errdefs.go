// Package errdefs classifies engine errors the way the Docker API reports
// them: not found (404), conflict (409), invalid parameter (400), not
// modified (304), forbidden (403); anything else is a system error (500).
// It only wraps errors; it owns no state.
package errdefs

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind is the class of an error.
type Kind int

// Kinds, each with its HTTP status.
const (
	System Kind = iota
	NotFound
	Conflict
	InvalidParameter
	NotModified
	Forbidden
)

type classified struct {
	kind Kind
	err  error
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

func wrap(k Kind, format string, args ...any) error {
	return &classified{k, fmt.Errorf(format, args...)}
}

// NotFoundf makes a not-found error (404).
func NotFoundf(format string, args ...any) error { return wrap(NotFound, format, args...) }

// Conflictf makes a conflict error (409).
func Conflictf(format string, args ...any) error { return wrap(Conflict, format, args...) }

// InvalidParameterf makes a bad-parameter error (400).
func InvalidParameterf(format string, args ...any) error {
	return wrap(InvalidParameter, format, args...)
}

// NotModifiedf makes a not-modified answer (304).
func NotModifiedf(format string, args ...any) error { return wrap(NotModified, format, args...) }

// Forbiddenf makes a forbidden error (403).
func Forbiddenf(format string, args ...any) error { return wrap(Forbidden, format, args...) }

// As gives err the kind k unless it already has one.
func As(k Kind, err error) error {
	if err == nil || KindOf(err) != System {
		return err
	}
	return &classified{k, err}
}

// KindOf finds the outermost kind in err's chain.
func KindOf(err error) Kind {
	var c *classified
	if errors.As(err, &c) {
		return c.kind
	}
	return System
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// HTTPStatus maps an error to the status code dockerd uses for it.
func HTTPStatus(err error) int {
	switch KindOf(err) {
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case InvalidParameter:
		return http.StatusBadRequest
	case NotModified:
		return http.StatusNotModified
	case Forbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}
