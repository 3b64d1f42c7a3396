"""A Spillway consumer on Python's gRPC stack (Debian's python3-grpcio), to prove the
Ingest proto works outside C++. Run by grpc_test.cc with /usr/bin/python3:

    python_consumer.py GEN_DIR PORT

GEN_DIR holds ingest_pb2.py and ingest_pb2_grpc.py (protoc --python_out, and
--grpc_out with /usr/bin/grpc_python_plugin). The script attaches on 127.0.0.1:PORT,
takes one upload, checks each file's bytes against the SHA-256 the server computed,
replies 201 with a JSON body naming the files, prints that body and exits 0 (1 if a
checksum does not match, 2 if the stream ended first).
"""
import hashlib
import json
import queue
import sys

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/spillway/v1")

import grpc  # noqa: E402
from spillway.v1 import ingest_pb2, ingest_pb2_grpc  # noqa: E402


def main():
    outgoing = queue.Queue()
    outgoing.put(ingest_pb2.ConsumerMessage(
        attach=ingest_pb2.Attach(name="python", path_prefixes=["/py"])))

    def requests():
        while True:
            message = outgoing.get()
            if message is None:
                return
            yield message

    channel = grpc.insecure_channel("127.0.0.1:" + sys.argv[2])
    stub = ingest_pb2_grpc.IngestStub(channel)
    files = []
    digest = None
    ok = True
    replied = False
    # After the reply the request stream half-closes; the server then ends the call,
    # which ends this loop (the reply was read before the half-close).
    for message in stub.Consume(requests()):
        kind = message.WhichOneof("kind")
        if replied:
            continue
        if kind == "request_started":
            upload_id = message.request_started.upload_id
        elif kind == "file_started":
            digest = hashlib.sha256()
            size = 0
            name = message.file_started.file.filename
        elif kind == "chunk":
            digest.update(message.chunk.data)
            size += len(message.chunk.data)
        elif kind == "file_finished":
            ok = ok and digest.hexdigest() == message.file_finished.checksum
            files.append({"filename": name, "size": size, "sha256": digest.hexdigest()})
        elif kind == "request_finished":
            body = json.dumps({"upload_id": upload_id, "consumer": "python",
                               "files": files}, separators=(",", ":"))
            outgoing.put(ingest_pb2.ConsumerMessage(reply=ingest_pb2.Reply(
                upload_id=upload_id, status=201 if ok else 422,
                headers=[ingest_pb2.Header(name="content-type",
                                           value="application/json")],
                body=body.encode())))
            outgoing.put(None)
            print(body, flush=True)
            replied = True
    if not replied:
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
