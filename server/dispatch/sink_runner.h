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
// Files are published (SinkFile::Publish) only once RequestFinished arrives, all of
// them or, if one cannot be, none: an upload that fails or is abandoned after some of
// its files were written whole (stream mode) stores nothing either.
//
// Threading: RunSinkDelivery() blocks; it runs on the worker's own thread, never on an
// event loop. RunSinkDeliveryInline() never blocks: it is for sinks that ignore the
// bytes (Sink::ignores_bytes()), and handles each event on the thread that delivers
// it: the caller's for every event at hand (all of a buffered upload), then, in stream
// mode, the producer's (an event loop) as the bytes arrive. No thread waits, and none
// is woken per chunk.
#ifndef SPILLWAY_SERVER_DISPATCH_SINK_RUNNER_H_
#define SPILLWAY_SERVER_DISPATCH_SINK_RUNNER_H_

#include <memory>

#include "server/dispatch/delivery.h"
#include "server/dispatch/sink.h"

namespace spillway {

// Handles `delivery` to the end: on return it has been answered, failed, or aborted.
void RunSinkDelivery(Sink& sink, Delivery& delivery);

// Starts handling `delivery` and returns once no event is at hand; the rest is handled
// as events arrive, and the delivery is released when answered.
// REQUIRES: sink->ignores_bytes().
void RunSinkDeliveryInline(std::shared_ptr<Sink> sink, std::unique_ptr<Delivery> delivery);

// True while this thread is handling events for RunSinkDeliveryInline(). An answer
// given there may start the next upload on the same thread; SinkWorker then hands it
// to its own thread, so that inline runs never nest.
bool InsideInlineSinkDelivery();

}  // namespace spillway

#endif  // SPILLWAY_SERVER_DISPATCH_SINK_RUNNER_H_
