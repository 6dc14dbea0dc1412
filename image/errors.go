package image

import "errors"

// Errors the engine maps to HTTP status codes: ErrNotFound → 404,
// ErrConflict → 409, ErrInvalid → 400. They are wrapped with context;
// test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid argument")
)

// notFound is Docker's wording for an unknown image.
type notFound struct{ ref string }

func (e notFound) Error() string { return "No such image: " + e.ref }
func (e notFound) Unwrap() error { return ErrNotFound }
