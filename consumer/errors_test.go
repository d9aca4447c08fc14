// Which SLS answers mean an expired cursor.
package consumer

import (
	"errors"
	"testing"
)

func TestIsInvalidCursor(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&apiError{HTTPStatus: 400, Code: "InvalidCursor", Message: "cursor is invalid"}, true},
		{&apiError{HTTPStatus: 400, Code: "ParameterInvalid", Message: "Invalid cursor"}, true},
		{&apiError{HTTPStatus: 400, Code: "ParameterInvalid", Message: "ParameterCount should be in [0-1000]"}, false},
		{&apiError{HTTPStatus: 404, Code: "LogStoreNotExist", Message: "invalid cursor"}, false},
		{errors.New("invalid cursor"), false},
	} {
		if got := isInvalidCursor(c.err); got != c.want {
			t.Errorf("isInvalidCursor(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
