// Pipelined polls and late answers on the lean client against real HTTP servers: answers in order, closes and cancellations mid-pipeline, late answers left to goroutines, a stalled host, a broken pipeline.
package consumer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pipelineAll sends requests pipelined and reads their answers in order,
// as the pull worker does; it returns each body (or error text).
func pipelineAll(t *testing.T, tr *leanTransport, ctxs []context.Context, reqs []*leanRequest) []string {
	t.Helper()
	sent, errs := tr.sendPipelined(ctxs, reqs)
	out := make([]string, len(sent))
	for i, s := range sent {
		if errs[i] != nil {
			out[i] = "send error: " + errs[i].Error()
			continue
		}
		out[i] = readAnswer(s)
	}
	return out
}

// readAnswer receives a sent request's answer: its body, or error text.
func readAnswer(s *sentRequest) string {
	resp, err := s.receive(nil, map[string]string{})
	if err != nil {
		return "error: " + err.Error()
	}
	body, err := io.ReadAll(resp.body)
	resp.done(err == nil)
	if err != nil {
		return "body error: " + err.Error()
	}
	return string(body)
}

func pipelineRequests(host string, uris ...string) ([]context.Context, []*leanRequest) {
	ctxs := make([]context.Context, len(uris))
	reqs := make([]*leanRequest, len(uris))
	for i, uri := range uris {
		ctxs[i] = context.Background()
		reqs[i] = &leanRequest{method: http.MethodGet, scheme: "http", host: host, uri: uri, header: func(func(string, string)) {}}
	}
	return ctxs, reqs
}

// TestLeanTransportPipelinesIdlePolls: a batch of GETs shares a few
// connections, every answer reaches its own request, a connection the
// server closes in the middle sends the rest again, and the connections
// serve the next batch.
func TestLeanTransportPipelinesIdlePolls(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("mode") == "close" {
			w.Header().Set("Connection", "close")
		}
		if r.URL.Query().Get("mode") == "chunked" {
			_, _ = io.WriteString(w, "chunked:")
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 5*time.Second)
	defer tr.close()

	uris := make([]string, 70)
	for i := range uris {
		uris[i] = "/p" + strconv.Itoa(i)
	}
	uris[5] += "?mode=chunked"
	ctxs, reqs := pipelineRequests(host, uris...)
	got := pipelineAll(t, tr, ctxs, reqs)
	for i, body := range got {
		want := "/p" + strconv.Itoa(i)
		if i == 5 {
			want = "chunked:" + want
		}
		if body != want {
			t.Fatalf("answer %d: %q, want %q", i, body, want)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("70 pipelined requests took %d connections, want 3 (32 a connection)", n)
	}

	// The server closes the first connection after its 10th answer: the
	// 22 requests behind it are sent again, each on a connection of its own.
	uris = uris[:32]
	uris[5] = "/p5"
	uris[9] += "?mode=close"
	ctxs, reqs = pipelineRequests(host, uris...)
	got = pipelineAll(t, tr, ctxs, reqs)
	for i, body := range got {
		if want := "/p" + strconv.Itoa(i); body != want {
			t.Fatalf("after a close in the pipeline, answer %d: %q, want %q", i, body, want)
		}
	}
	if !tr.pipelining() {
		t.Fatal("a server's announced close turned pipelining off; only an unannounced one should")
	}
}

// TestLeanTransportStopsPipeliningWhenTheServerDropsThem: a server that
// answers one request a connection and closes it without saying so still
// gets every request answered, and pipelining is turned off for it.
func TestLeanTransportStopsPipeliningWhenTheServerDropsThem(t *testing.T) {
	addr, requests := flakyServer(t)
	tr := newLeanTransport(nil, "", 5*time.Second)
	defer tr.close()
	ctxs, reqs := pipelineRequests(addr, "/a", "/b", "/c", "/d")
	for i, body := range pipelineAll(t, tr, ctxs, reqs) {
		if body != "ok" {
			t.Fatalf("answer %d: %q", i, body)
		}
	}
	if n := requests.Load(); n != 4 {
		t.Fatalf("server answered %d requests, want 4", n)
	}
	if tr.pipelining() {
		t.Fatal("pipelining still on for a server that drops pipelined requests")
	}
}

// TestLeanTransportPipelineCancellation: cancelling a request queued behind
// a slow answer does not cut that answer; cancelling the request being read
// cuts it, and the requests behind it are sent again.
func TestLeanTransportPipelineCancellation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/hang":
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", time.Minute)
	defer tr.close()

	ctxs, reqs := pipelineRequests(host, "/slow", "/b", "/cancelled", "/d")
	ctx, cancel := context.WithCancel(context.Background())
	ctxs[2] = ctx
	time.AfterFunc(100*time.Millisecond, cancel)
	got := pipelineAll(t, tr, ctxs, reqs)
	want := []string{"/slow", "/b", "error: context canceled", "/d"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("answers %q, want %q", got, want)
		}
	}

	ctxs, reqs = pipelineRequests(host, "/hang", "/b", "/c")
	ctx, cancel = context.WithCancel(context.Background())
	ctxs[0] = ctx
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	got = pipelineAll(t, tr, ctxs, reqs)
	want = []string{"error: context canceled", "/b", "/c"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("answers %q, want %q", got, want)
		}
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("a cancelled answer took %s to cut", time.Since(start))
	}
	if !tr.pipelining() {
		t.Fatal("a cancellation turned pipelining off")
	}
}

// TestLeanTransportLeavesALateAnswerBehind: a pull worker waits for an
// answer only answerWindow after sending it; the requests pipelined behind
// a late one are sent again at once, pipelined on one fresh connection,
// and answered, except one already cancelled; the late answer is still
// read when it comes, and its connection is closed after it rather than
// reused.
func TestLeanTransportLeavesALateAnswerBehind(t *testing.T) {
	const slowAnswer = minAnswerWindow + 300*time.Millisecond
	release := make(chan struct{})
	var opened, closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			<-release
		case "/stuck":
			<-r.Context().Done()
			return
		case "/slow":
			time.Sleep(slowAnswer)
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 10*time.Second)
	defer tr.close()

	ctxs, reqs := pipelineRequests(host, "/a", "/hang", "/b", "/cancelled", "/c")
	cancelled, cancel := context.WithCancel(context.Background())
	ctxs[3] = cancelled
	sent, errs := tr.sendPipelined(ctxs, reqs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if !sent[0].answeredInTime() || readAnswer(sent[0]) != "/a" {
		t.Fatal("the first answer was not read in time")
	}
	began := time.Now()
	if sent[1].answeredInTime() {
		t.Fatal("an answer that never came was reported in time")
	}
	if waited := time.Since(began); waited > 2*time.Second {
		t.Fatalf("waited %s for a late answer, want about answerWindow (%s)", waited, tr.answerWindow())
	}
	cancel() // its member stops as the worker moves on
	behind := []inflightPull{{sent: sent[2]}, {sent: sent[3]}, {sent: sent[4]}}
	resendBehind(sent[1], behind)
	if behind[1].sent != nil || !errors.Is(behind[1].err, context.Canceled) {
		t.Fatalf("the cancelled request behind the late one: sent %v, err %v; want not sent, context.Canceled", behind[1].sent != nil, behind[1].err)
	}
	for _, b := range []struct {
		p    inflightPull
		want string
	}{{behind[0], "/b"}, {behind[2], "/c"}} {
		if b.p.err != nil {
			t.Fatalf("%s could not be sent again: %v", b.want, b.p.err)
		}
		if b.p.sent.conn == sent[1].conn {
			t.Fatalf("%s is still on the late answer's connection", b.want)
		}
		if !b.p.sent.answeredInTime() {
			t.Fatalf("%s, sent again, was not answered in time", b.want)
		}
		if got := readAnswer(b.p.sent); got != b.want {
			t.Fatalf("answer of %s: %q", b.want, got)
		}
	}
	if n := opened.Load(); n != 2 {
		t.Fatalf("%d connections opened, want 2: the pipeline's and one for the requests sent again", n)
	}
	close(release)
	if got := readAnswer(sent[1]); got != "/hang" {
		t.Fatalf("the late answer: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for closed.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := closed.Load(); n != 1 {
		t.Fatalf("%d connections closed after the late answer, want its own (1)", n)
	}
	if w := tr.answerWindow(); w != minAnswerWindow {
		t.Fatalf("answerWindow = %s after answers on a local server, want the minimum %s", w, minAnswerWindow)
	}

	// A request sent alone and late gets its own deadline back: its answer,
	// coming after the window, is read.
	ctxs, reqs = pipelineRequests(host, "/slow")
	alone, err := tr.send(ctxs[0], reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	if alone.answeredInTime() {
		t.Fatalf("an answer taking %s was in time (window %s)", slowAnswer, tr.answerWindow())
	}
	if got := readAnswer(alone); got != "/slow" {
		t.Fatalf("the late answer of a request sent alone: %q", got)
	}

	// A request cancelled while its worker waits is reported at once, as
	// receive returns its cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, stuck := pipelineRequests(host, "/stuck")
	s, err := tr.send(ctx, stuck[0])
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	began = time.Now()
	if !s.answeredInTime() {
		t.Fatal("a cancelled request was reported late rather than cancelled")
	}
	if waited := time.Since(began); waited >= minAnswerWindow {
		t.Fatalf("a cancellation took %s to end the wait", waited)
	}
	if got := readAnswer(s); got != "error: context canceled" {
		t.Fatalf("the cancelled request: %q", got)
	}
}

// workerReads reads pulls with readAnswers as a pull worker does, late
// answers on goroutines of their own, and returns each answer (or error
// text) once all have come, and how long the worker itself was held.
func workerReads(pulls []inflightPull) (answers []string, held time.Duration, waitLate func()) {
	answers = make([]string, len(pulls))
	index := map[*shardState]int{}
	for i := range pulls {
		pulls[i].sh = &shardState{id: i}
		index[pulls[i].sh] = i
	}
	read := func(p *inflightPull) string {
		if p.err != nil {
			return "error: " + p.err.Error()
		}
		return readAnswer(p.sent)
	}
	var late sync.WaitGroup
	began := time.Now()
	readAnswers(pulls, func() bool { return true }, func(p *inflightPull) {
		answers[index[p.sh]] = read(p)
	}, func(p inflightPull) {
		late.Go(func() { answers[index[p.sh]] = read(&p) })
	})
	return answers, time.Since(began), late.Wait
}

// TestLeanTransportAStalledHostHoldsAWorkerAboutOneWindow: when every poll
// of a pipeline hangs, a worker reading it (late answers to goroutines,
// the rest resent) is held about one answer window plus a short grace for
// each poll, not a whole window for each (32 × 400 ms); every answer still
// arrives once the host answers.
func TestLeanTransportAStalledHostHoldsAWorkerAboutOneWindow(t *testing.T) {
	stalled := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(stalled) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-stalled
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	defer srv.Close()
	defer release() // before srv.Close: handlers must return
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 10*time.Second)
	defer tr.close()

	uris := make([]string, pipelineDepth)
	for i := range uris {
		uris[i] = "/p" + strconv.Itoa(i)
	}
	answers, held, waitLate := workerReads(pipelinePulls(t, tr, host, uris...))
	bound := minAnswerWindow + time.Duration(pipelineDepth)*100*time.Millisecond
	t.Logf("a stalled host held the worker %s for %d polls (bound %s)", held.Round(time.Millisecond), pipelineDepth, bound)
	if held > bound {
		t.Errorf("a stalled host held the worker %s, want about one window plus a grace a poll (under %s)", held.Round(time.Millisecond), bound)
	}
	release()
	waitLate()
	for i, got := range answers {
		if want := "/p" + strconv.Itoa(i); got != want {
			t.Errorf("answer %d: %q, want %q", i, got, want)
		}
	}
}

// TestLeanTransportABrokenPipelineIsResentTogether: the server ends a
// connection after its second answer (Connection: close); the polls behind
// are sent again together, and one of them that hangs is left late like
// any other, not waited for by the worker.
func TestLeanTransportABrokenPipelineIsResentTogether(t *testing.T) {
	stalled := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(stalled) }) }
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
		case "/hang":
			<-stalled
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	defer release()
	host := strings.TrimPrefix(srv.URL, "http://")
	tr := newLeanTransport(nil, "", 10*time.Second)
	defer tr.close()

	answers, held, waitLate := workerReads(pipelinePulls(t, tr, host, "/a", "/close", "/hang", "/b", "/c"))
	if bound := minAnswerWindow + time.Second; held > bound {
		t.Errorf("a hanging poll behind a broken pipeline held the worker %s (bound %s)", held.Round(time.Millisecond), bound)
	}
	release()
	waitLate()
	if got, want := strings.Join(answers, " "), "/a /close /hang /b /c"; got != want {
		t.Errorf("answers %q, want %q", got, want)
	}
	// The pipeline's connection, one for the three sent again together, one
	// for the two behind the hanging one.
	if n := opened.Load(); n != 3 {
		t.Errorf("%d connections opened, want 3", n)
	}
	if !tr.pipelining() {
		t.Error("an announced close turned pipelining off")
	}
}

// pipelinePulls sends GETs of uris pipelined, as pulls.
func pipelinePulls(t *testing.T, tr *leanTransport, host string, uris ...string) []inflightPull {
	t.Helper()
	ctxs, reqs := pipelineRequests(host, uris...)
	sent, errs := tr.sendPipelined(ctxs, reqs)
	pulls := make([]inflightPull, len(sent))
	for i := range sent {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		pulls[i].sent = sent[i]
	}
	return pulls
}
