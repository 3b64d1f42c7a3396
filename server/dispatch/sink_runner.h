// RunSinkDelivery: what a built-in sink worker does with one upload: pulls its events
// one by one (so a slow sink slows the uploader, in stream mode), writes each file
// through the Sink, and replies with the JSON receipt (receipt.h) and the sink's
// success status once RequestFinished arrives.
//
// Checksums: the receipt reuses the checksum the upload computed as its bytes arrived
// (FileFinished). Only a sink that needs_sha256() while FILE_UPLOAD_CHECKSUM is not
// sha256 makes the runner hash the bytes itself; otherwise no byte is hashed twice,
// and with FILE_UPLOAD_CHECKSUM=none the discard sink hashes nothing at all.
//
// Failures: a file the sink cannot store gets a reply at once (507 when the disk is
// full, 500 otherwise) rather than Fail(), since redelivering to the same disk would
// fail again; an event that cannot be read is Fail()ed (the dispatcher may redeliver
// it); RequestAborted ends the delivery with nothing stored (partial files removed).
//
// Threading: blocking; runs on the worker's own thread, never on an event loop.
#ifndef SPILLWAY_SERVER_DISPATCH_SINK_RUNNER_H_
#define SPILLWAY_SERVER_DISPATCH_SINK_RUNNER_H_

#include "server/dispatch/delivery.h"
#include "server/dispatch/sink.h"

namespace spillway {

// Handles `delivery` to the end: on return it has been answered, failed, or aborted.
void RunSinkDelivery(Sink& sink, Delivery& delivery);

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_SINK_RUNNER_H_
