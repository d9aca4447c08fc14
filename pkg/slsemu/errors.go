// SLS error responses: the JSON body {"errorCode","errorMessage"} with x-log-requestid.
package slsemu

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// APIError is an error as SLS returns it. The SDKs only recognise errors
// whose body is this JSON, so every failure, unknown routes included, uses it.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"errorCode"`
	Message string `json:"errorMessage"`
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func newAPIError(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func errProjectNotExist(name string) *APIError {
	return newAPIError(http.StatusNotFound, "ProjectNotExist", "The Project does not exist : %s", name)
}

func errLogStoreNotExist(name string) *APIError {
	return newAPIError(http.StatusNotFound, "LogStoreNotExist", "logstore %s does not exist", name)
}

func errShardNotExist(id string) *APIError {
	return newAPIError(http.StatusBadRequest, "ShardNotExist", "shard %s does not exist", id)
}

func errInvalidCursor(cursor string) *APIError {
	return newAPIError(http.StatusBadRequest, "InvalidCursor", "cursor %q is invalid or out of the retained range", cursor)
}

func errParameterInvalid(format string, args ...any) *APIError {
	return newAPIError(http.StatusBadRequest, "ParameterInvalid", format, args...)
}

func errConsumerGroupNotExist(name string) *APIError {
	return newAPIError(http.StatusNotFound, "ConsumerGroupNotExist", "consumer group %s does not exist", name)
}

func errPostBodyInvalid(format string, args ...any) *APIError {
	return newAPIError(http.StatusBadRequest, "PostBodyInvalid", format, args...)
}

// writeError sends e as SLS does.
func writeError(w http.ResponseWriter, requestID string, e *APIError) {
	body, _ := json.Marshal(e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Log-Requestid", requestID)
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// writeJSON sends a 200 with v as JSON.
func writeJSON(w http.ResponseWriter, requestID string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, requestID, newAPIError(http.StatusInternalServerError, "InternalServerError", "encode response: %v", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Log-Requestid", requestID)
	_, _ = w.Write(body)
}

// writeEmpty sends a 200 with an empty body, as SLS does for writes.
func writeEmpty(w http.ResponseWriter, requestID string) {
	h := w.Header()
	h.Set("X-Log-Requestid", requestID)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}
