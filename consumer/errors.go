// SLS errors: the code exactly as SLS returned it, and which ones mean a retry, a lost shard or a reset cursor.
package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	sls "github.com/aliyun/aliyun-log-go-sdk"
)

// apiError is an error answer to one of our raw requests (PullLogs).
type apiError struct {
	HTTPStatus int
	Code       string `json:"errorCode"`
	Message    string `json:"errorMessage"`
	RequestID  string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("SLS %d %s: %s (request %s)", e.HTTPStatus, e.Code, e.Message, e.RequestID)
}

// parseAPIError reads SLS's JSON error body; a body that is not one still
// yields the HTTP status.
func parseAPIError(status int, body []byte, requestID string) *apiError {
	e := &apiError{HTTPStatus: status, RequestID: requestID}
	if json.Unmarshal(body, e) != nil || e.Code == "" {
		e.Code = fmt.Sprintf("HTTP%d", status)
		if len(body) > 200 {
			body = body[:200]
		}
		e.Message = string(body)
	}
	return e
}

// Codes the engine acts on.
const (
	codeClientError            = "ClientError" // transport failure: no answer from SLS
	codeGroupNotExist          = "ConsumerGroupNotExist"
	codeGroupAlreadyExist      = "ConsumerGroupAlreadyExist"
	codeNotExistConsumerWithBo = "NotExistConsumerWithBody"
	codeInvalidCursor          = "InvalidCursor"
	codeLogStoreNotExist       = "LogStoreNotExist"
)

// isInvalidCursor reports a cursor SLS no longer knows (expired with the
// data it pointed at): InvalidCursor, or ParameterInvalid "Invalid cursor",
// which SLS also answers (the Python and Java SDKs look for the substring).
func isInvalidCursor(err error) bool {
	switch errorCode(err) {
	case codeInvalidCursor:
		return true
	case "ParameterInvalid":
		return strings.Contains(strings.ToLower(strings.ReplaceAll(err.Error(), " ", "")), "invalidcursor")
	}
	return false
}

// errorCode is the SLS error code of err, or ClientError when SLS did not
// answer (transport failure, timeout).
func errorCode(err error) string {
	var api *apiError
	if errors.As(err, &api) {
		return api.Code
	}
	var slsErr *sls.Error
	if errors.As(err, &slsErr) && slsErr.Code != "" {
		return slsErr.Code
	}
	var bad *sls.BadResponseError
	if errors.As(err, &bad) {
		return fmt.Sprintf("HTTP%d", bad.HTTPCode)
	}
	return codeClientError
}

// httpStatus is the HTTP status SLS answered, or 0 when it did not answer.
func httpStatus(err error) int {
	var api *apiError
	if errors.As(err, &api) {
		return api.HTTPStatus
	}
	var slsErr *sls.Error
	if errors.As(err, &slsErr) && slsErr.HTTPCode > 0 {
		return int(slsErr.HTTPCode)
	}
	return 0
}

// lostOwnership reports an error meaning the shard is no longer ours to
// commit: another member holds it, or the server forgot us.
func lostOwnership(code string) bool {
	switch code {
	case "ConsumerNotMatch", "ConsumerNotExist", "ConsumerNotExsit", "ShardNotExist", "ShardNotExsit":
		return true
	}
	return false
}

// stopped reports whether err comes from our own cancellation.
func stopped(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled)
}
