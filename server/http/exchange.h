// The seam between the protocol sessions (server/http: HTTP/1.1 and HTTP/2) and
// what handles a request (the upload pipeline, the admin endpoints).
//
// For each request the session calls RequestHandler::Start() once its headers are
// complete, then feeds the body to the returned Exchange, and gives the Exchange a
// Responder through which exactly one HttpResponse goes back, possibly before the body
// has ended (an early error, or a consumer's early reply).
//
// Threading: everything here runs on the connection's EventLoop thread. Work that
// happens elsewhere (a consumer's reply) comes back through EventLoop::Post; since the
// stream may be gone by then, such callbacks hold a std::weak_ptr to the Exchange.
#ifndef SPILLWAY_SERVER_HTTP_EXCHANGE_H_
#define SPILLWAY_SERVER_HTTP_EXCHANGE_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/http/http_response.h"
#include "server/http/request_head.h"

namespace spillway {

class EventLoop;

// Implemented by the session's per-request stream. Loop thread only. Valid until the
// session calls Exchange::OnStreamClosed().
class Responder {
 public:
  virtual ~Responder() = default;
  // Sends the final response. At most once. If the body is still arriving, the
  // session stops delivering it (HTTP/1.1: reads and discards it within a bound, or
  // closes; HTTP/2: RST_STREAM after the response).
  virtual void Respond(HttpResponse response) = 0;
  // Flow control for streamed bodies. Counted: each Pause needs its own Resume.
  // HTTP/1.1 stops reading the socket; HTTP/2 withholds WINDOW_UPDATE for the stream.
  virtual void PauseBody() = 0;
  virtual void ResumeBody() = 0;
  // Body bytes the exchange has finished with (handed on, or dropped). HTTP/2 reopens
  // the stream's flow-control window by this much; HTTP/1.1 ignores it.
  virtual void ConsumeBody(size_t bytes) = 0;
};

// One request's handling. Created by RequestHandler::Start, owned (shared) by the
// session's stream; loop thread only.
class Exchange {
 public:
  virtual ~Exchange() = default;
  // Body bytes in arrival order; `data` is valid only during the call. A non-OK status
  // means the exchange has already responded (e.g. 413) and wants no more body.
  virtual absl::Status OnBodyData(std::string_view data) = 0;
  // Room where the session may read the body's next bytes from the socket, to pass
  // them to OnBodyData() from the start of the room as they lie: a streamed raw body
  // is then not copied from the connection's buffer into its chunk. Empty: read as
  // usual. Valid until the next call on the exchange.
  virtual std::span<char> BodyBuffer() { return {}; }
  virtual void OnBodyEnd() = 0;
  // The stream ended before a response was sent (client closed, RST_STREAM,
  // timeout), or after it: either way the Responder is gone after this call.
  virtual void OnStreamClosed() = 0;
  // The session answered the request itself with `response` (a body timeout, a
  // malformed chunked body) instead of the exchange's; OnStreamClosed() follows.
  // Only the access log and the metrics care.
  virtual void OnSessionResponded(const HttpResponse& response) {}
};

// Thread-safe; shared by all loops.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Called when a request's headers are complete. May respond at once (e.g. 404,
  // 413 from Content-Length) through `responder`, and still returns an Exchange.
  // `head` is the handler's: a wrapper reads what it needs and moves it on, so the
  // request's strings reach the upload uncopied.
  virtual std::shared_ptr<Exchange> Start(RequestHead head, Responder* responder,
                                          EventLoop* loop) = 0;
  // A request the session answered itself with `response` before any Exchange
  // existed: its head broke a limit, did not parse or did not arrive in time
  // (HTTP/1.1 400, 408, 431; HTTP/2 431), `elapsed` after its first byte. `head`
  // holds what was read of it; method and path may be empty. Only the access log
  // and the metrics care.
  virtual void OnRejected(const RequestHead& head, const HttpResponse& response,
                          absl::Duration elapsed) {}
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_HTTP_EXCHANGE_H_
