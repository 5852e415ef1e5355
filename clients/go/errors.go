package nexadb

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed call: the gRPC status code, the server's message and the method.
// errors.Is(err, ErrNotFound) and friends match on the code.
type Error struct {
	Code    codes.Code
	Message string
	Method  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("nexadb: %s: %s (%s)", e.Code, e.Message, e.Method)
}

// Is matches the sentinel errors below by code.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) && t.Method == "" && t.Message == "" {
		return e.Code == t.Code
	}
	return false
}

// GRPCStatus lets status.FromError / status.Code see the original code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// Sentinels for errors.Is.
var (
	ErrInvalidArgument  = &Error{Code: codes.InvalidArgument}
	ErrNotFound         = &Error{Code: codes.NotFound}
	ErrAlreadyExists    = &Error{Code: codes.AlreadyExists}
	ErrUnauthenticated  = &Error{Code: codes.Unauthenticated}
	ErrPermissionDenied = &Error{Code: codes.PermissionDenied}
	ErrUnavailable      = &Error{Code: codes.Unavailable}
	ErrUnimplemented    = &Error{Code: codes.Unimplemented}
)

// wrapErr makes err an *Error; method may be a full method name, of which the last part is kept.
func wrapErr(err error, method string) error {
	if err == nil {
		return nil
	}
	if i := strings.LastIndexByte(method, '/'); i >= 0 {
		method = method[i+1:]
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Code: codes.Unknown, Message: err.Error(), Method: method}
	}
	return &Error{Code: st.Code(), Message: st.Message(), Method: method}
}
