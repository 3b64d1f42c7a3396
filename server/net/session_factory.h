// SessionFactory: how a Connection gets its ProtocolSession once it has seen the
// first bytes, without server/net depending on the HTTP sessions. Implemented in
// server/http (HttpSessionFactory).
//
// Threading: shared by all loops; Create* run on the connection's loop thread and
// must not touch shared mutable state without their own locking.
#ifndef SPILLWAY_SERVER_NET_SESSION_FACTORY_H_
#define SPILLWAY_SERVER_NET_SESSION_FACTORY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/net/protocol_session.h"

namespace spillway {

class SessionFactory {
 public:
  virtual ~SessionFactory() = default;
  // The first bytes did not start with the HTTP/2 client preface.
  virtual absl::StatusOr<std::unique_ptr<ProtocolSession>> CreateHttp1(
      ConnectionIo* io) = 0;
  // The first 24 bytes are the HTTP/2 client preface (h2c with prior knowledge); the
  // session is then offered them, unconsumed.
  virtual absl::StatusOr<std::unique_ptr<ProtocolSession>> CreateHttp2(
      ConnectionIo* io) = 0;
  // Drain (SIGTERM): let the session finish what is in flight, take nothing new, and
  // close the connection when done. `session` was created by this factory (or is
  // one of its sessions after an Upgrade).
  virtual void Drain(ProtocolSession* session) = 0;
};

}  // namespace spillway

#endif  // SPILLWAY_SERVER_NET_SESSION_FACTORY_H_
