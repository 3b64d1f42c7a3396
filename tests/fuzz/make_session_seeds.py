#!/usr/bin/env python3
"""Writes the seed corpora of the protocol-session fuzzers.

Each seed is the 10-byte control header of session_fuzz_harness.h followed by what a
client would send: well-formed HTTP/1.1 requests for http1_session_fuzzer, and the
client preface and valid frames (HPACK from the static table and plain literals, no
Huffman) for http2_session_fuzzer, so that mutation starts from inputs that reach
deep into each session. The files are committed; rerun this after changing it:

    python3 tests/fuzz/make_session_seeds.py
"""
import base64
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# Behaviour bytes (session_fuzz_harness.h).
AT_END, IN_START, AT_FIRST_DATA, DEFERRED = 0, 1, 2, 3
PAUSE, HOLD, REFUSE, BIG, OTHER_STATUS, FRAMING = 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
# Act bytes.
RESPOND_ONE, NEWEST_FIRST, RESUME, CONSUME, DRAIN, RUN_POSTED, ABRUPT, POSTED = (
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)


def control(options=0, pieces=(0, 0, 0), act_mask=0, act=0, behaviours=(0, 0, 0, 0)):
    return bytes([options, *pieces, act_mask, act, *behaviours])


# --- HTTP/1.1 ----------------------------------------------------------------------

def http1_seeds():
    post = (b"POST /upload?name=a HTTP/1.1\r\nHost: example.test\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world")
    chunked = (b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    pipelined = (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                 b"HEAD /b?q=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                 b"GET http://h/c HTTP/1.1\r\nHost: h\r\n\r\n"
                 b"GET /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    expect = (b"PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\nhello")
    settings = base64.urlsafe_b64encode(
        struct.pack(">HIHI", 2, 0, 4, 1 << 20)).rstrip(b"=")
    upgrade = (b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
               b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
               + PREFACE + frame(SETTINGS, 0, 0, b"")
               + frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block("GET", "/after")))
    upgrade_with_body = (b"POST /p HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                         b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
                         b"Content-Length: 5\r\n\r\nabcdeGET /q HTTP/1.1\r\nHost: h\r\n\r\n")
    smuggling = (b"POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    # What the fuzzer found first: libhttp-parser frames a chunked body by
    # "Transfer-Encoding :", which the session missed; now a 400.
    space_before_colon = (b"POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding :chunked\r\n\r\n"
                          b"5\r\nhello\r\n0\r\n\r\n")
    big_early = (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n"
                 + b"x" * 200)
    return {
        "post_content_length": control() + post,
        "post_content_length_pieces": control(pieces=(7, 1, 30), act_mask=0x55,
                                              act=RESUME | DRAIN,
                                              behaviours=(PAUSE, HOLD, 0, 0)) + post,
        "post_chunked": control(pieces=(3, 11, 2)) + chunked,
        "pipelined_gets": control(act_mask=0xff, act=NEWEST_FIRST | RESPOND_ONE | RUN_POSTED,
                                  behaviours=(DEFERRED, DEFERRED, AT_END, DEFERRED)) + pipelined,
        "pipelined_small_limits": control(options=0x03, pieces=(40, 0, 0), act_mask=0x0f,
                                          act=DRAIN | RUN_POSTED,
                                          behaviours=(BIG, DEFERRED, 0, OTHER_STATUS)) + pipelined,
        "expect_continue": control(pieces=(70, 0, 0), act_mask=0x01, act=RUN_POSTED) + expect,
        "expect_continue_refused": control(behaviours=(IN_START | OTHER_STATUS, 0, 0, 0)) + expect,
        "upgrade_h2c": control(options=0x04, pieces=(90, 0, 0)) + upgrade,
        "upgrade_with_body": control(options=0x04) + upgrade_with_body,
        "smuggling_cl_te": control() + smuggling,
        "smuggling_space_before_colon": control(behaviours=(DEFERRED | PAUSE, 0, 0, 0))
                                        + space_before_colon,
        "early_response": control(behaviours=(REFUSE | FRAMING, 0, 0, 0)) + big_early,
        "posted_reply_drain": control(options=0x08 | (1 << 4), pieces=(30, 30, 30),
                                      act_mask=0xff, act=POSTED | RUN_POSTED,
                                      behaviours=(DEFERRED, AT_FIRST_DATA, 0, 0)) + pipelined,
    }


# --- HTTP/2 --------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0, 1, 2, 3, 4, 6, 7, 8, 9)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(type_, flags, stream_id, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(
        ">I", stream_id) + payload


def hpack_int(value, prefix_bits, first):
    # RFC 7541 §5.1 integer with `first` holding the bits above the prefix.
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = [first | limit], value - limit
    while value >= 128:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(out + [value])


def literal(name_index, value, indexed=False):
    # Literal with a static-table name; with incremental indexing (6-bit prefix) or
    # without indexing (4-bit prefix). Values are short, never Huffman-coded.
    value = value.encode()
    assert len(value) < 127
    head = hpack_int(name_index, 6, 0x40) if indexed else hpack_int(name_index, 4, 0x00)
    return head + bytes([len(value)]) + value


def literal_new_name(name, value):
    name, value = name.encode(), value.encode()
    return bytes([0x00, len(name)]) + name + bytes([len(value)]) + value


def request_block(method, path, content_length=None, extra=b""):
    block = bytes([0x82 if method == "GET" else 0x83]) if method in ("GET", "POST") else (
        literal(2, method))
    block += literal(4, path) + bytes([0x86]) + literal(1, "example.test", indexed=True)
    if content_length is not None:
        block += literal(28, str(content_length))  # content-length
    return block + extra


def settings(*entries):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in entries))


def http2_seeds():
    start = PREFACE + settings((2, 0), (4, 65535), (5, 16384))
    post = (frame(HEADERS, END_HEADERS, 1,
                  request_block("POST", "/upload/raw?name=x", 5,
                                literal(31, "text/plain")))  # content-type
            + frame(DATA, 0, 1, b"hel") + frame(DATA, END_STREAM, 1, b"lo"))
    get = frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block("GET", "/healthz"))
    block = request_block("POST", "/continued", None,
                          literal_new_name("x-custom", "yes") + literal_new_name("cookie", "a=1")
                          + literal_new_name("cookie", "b=2"))
    continuation = (frame(HEADERS, 0, 5, block[:5]) + frame(CONTINUATION, 0, 5, block[5:9])
                    + frame(CONTINUATION, END_HEADERS, 5, block[9:])
                    + frame(DATA, END_STREAM, 5, b"body"))
    rst = (frame(HEADERS, END_HEADERS, 7, request_block("POST", "/abort"))
           + frame(DATA, 0, 7, b"partial") + frame(RST_STREAM, 0, 7, struct.pack(">I", 8)))
    ping = frame(PING, 0, 0, b"12345678") + frame(PING, ACK, 0, b"87654321")
    window = (frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20))
              + frame(HEADERS, END_HEADERS, 9, request_block("POST", "/w", 4))
              + frame(WINDOW_UPDATE, 0, 9, struct.pack(">I", 4096))
              + frame(DATA, END_STREAM, 9, b"data"))
    padded = frame(HEADERS, END_HEADERS | PADDED | PRIORITY_FLAG, 11,
                   bytes([3]) + struct.pack(">IB", 0, 15) + request_block("POST", "/pad")
                   + b"\0\0\0") + frame(DATA, END_STREAM | PADDED, 11, bytes([2]) + b"xy\0\0")
    trailers = (frame(HEADERS, END_HEADERS, 13, request_block("POST", "/t"))
                + frame(DATA, 0, 13, b"abc")
                + frame(HEADERS, END_HEADERS | END_STREAM, 13,
                        literal_new_name("x-checksum", "1")))
    priority = frame(PRIORITY, 0, 15, struct.pack(">IB", 0, 200))
    goaway = frame(GOAWAY, 0, 0, struct.pack(">II", 13, 0))
    settings_ack = frame(SETTINGS, ACK, 0, b"")
    return {
        "settings": control() + start + settings_ack,
        "post_data_end_stream": control() + start + post,
        "post_data_pieces": control(pieces=(9, 1, 17), act_mask=0xaa,
                                    act=CONSUME | RESUME | RUN_POSTED,
                                    behaviours=(HOLD | PAUSE, 0, 0, 0)) + start + post,
        "get_end_stream": control() + start + get,
        "continuation": control() + start + continuation,
        "rst_stream": control(behaviours=(DEFERRED, 0, 0, 0)) + start + rst,
        "ping": control() + start + ping,
        "window_update": control() + start + window,
        "padded_priority": control() + start + padded + priority,
        "trailers": control() + start + trailers,
        "many_streams_small": control(options=0x04 | 0x08, act_mask=0x0f,
                                      act=DRAIN | NEWEST_FIRST | RUN_POSTED,
                                      behaviours=(DEFERRED | BIG, IN_START, AT_FIRST_DATA,
                                                  REFUSE)) + start + post + get + continuation
                              + window + trailers + goaway,
        # No preface in the data: the harness puts it (and SETTINGS) in front.
        "preface_added": control(options=0x02) + post + get,
        "drain_mid_stream": control(options=0x10 | (1 << 5), pieces=(60, 0, 0),
                                    behaviours=(DEFERRED, 0, 0, 0),
                                    act=POSTED | RUN_POSTED, act_mask=0xff) + start + post + get,
    }


def write(name, seeds):
    directory = os.path.join(HERE, "corpus", name)
    os.makedirs(directory, exist_ok=True)
    for seed_name, data in seeds.items():
        with open(os.path.join(directory, seed_name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("http1_session_fuzzer", http1_seeds())
    write("http2_session_fuzzer", http2_seeds())
