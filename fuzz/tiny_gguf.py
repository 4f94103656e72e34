#!/usr/bin/env python3
"""Writes a tiny GGUF Llama (GGUF v3, one layer, F32/F16/Q8_0 tensors, a byte-level BPE
vocabulary) to argv[1], with the header alone (no tensor data) to argv[2]: the seeds of the
`gguf` fuzz target. Python's standard library only; deterministic."""

import random
import struct
import sys

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTERMEDIATE = 32, 2, 1, 16, 64
ALIGNMENT = 32
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"]
TEMPLATE = (
    "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
F32, F16, Q8_0 = 0, 1, 8
U32, I32, F32V, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9


def byte_alphabet():
    printable = lambda b: 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255
    shifted, out = 0, []
    for b in range(256):
        if printable(b):
            out.append(chr(b))
        else:
            shifted += 1
            out.append(chr(255 + shifted))
    return out


def string(text):
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def value(kind, v):
    if kind == U32:
        return struct.pack("<I", v)
    if kind == I32:
        return struct.pack("<i", v)
    if kind == F32V:
        return struct.pack("<f", v)
    if kind == BOOL:
        return struct.pack("<B", 1 if v else 0)
    if kind == STRING:
        return string(v)
    elem, items = v
    return struct.pack("<IQ", elem, len(items)) + b"".join(value(elem, i) for i in items)


def encode(values, dtype):
    if dtype == F32:
        return struct.pack(f"<{len(values)}f", *values)
    if dtype == F16:
        return struct.pack(f"<{len(values)}e", *values)
    out = b""
    for i in range(0, len(values), 32):
        block = values[i : i + 32]
        scale = max(abs(x) for x in block) / 127 or 1.0
        out += struct.pack("<e", scale) + struct.pack("<32b", *[round(x / scale) for x in block])
    return out


def main(full_path, header_path):
    rng = random.Random(0)
    tokens = byte_alphabet() + [m.replace(" ", "") for m in MERGES] + SPECIAL
    vocab = len(tokens)
    types = [1] * (vocab - len(SPECIAL)) + [3] * len(SPECIAL)
    metadata = [
        ("general.architecture", STRING, "llama"),
        ("general.alignment", U32, ALIGNMENT),
        ("llama.block_count", U32, 1),
        ("llama.context_length", U32, 2048),
        ("llama.embedding_length", U32, HIDDEN),
        ("llama.feed_forward_length", U32, INTERMEDIATE),
        ("llama.attention.head_count", U32, HEADS),
        ("llama.attention.head_count_kv", U32, KV_HEADS),
        ("llama.rope.freq_base", F32V, 500000.0),
        ("llama.attention.layer_norm_rms_epsilon", F32V, 1e-5),
        ("llama.vocab_size", U32, vocab),
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, tokens)),
        ("tokenizer.ggml.token_type", ARRAY, (I32, types)),
        ("tokenizer.ggml.merges", ARRAY, (STRING, MERGES)),
        ("tokenizer.ggml.bos_token_id", U32, vocab - len(SPECIAL)),
        ("tokenizer.ggml.eos_token_id", U32, vocab - len(SPECIAL) + 1),
        ("tokenizer.ggml.add_bos_token", BOOL, True),
        ("tokenizer.chat_template", STRING, TEMPLATE),
    ]
    # (name, [rows, cols] as Hugging Face shapes them, dtype); GGUF stores dims innermost first.
    tensors = [
        ("token_embd.weight", [vocab, HIDDEN], Q8_0),
        ("output_norm.weight", [HIDDEN], F32),
        ("blk.0.attn_q.weight", [HEADS * HEAD_DIM, HIDDEN], F32),
        ("blk.0.attn_k.weight", [KV_HEADS * HEAD_DIM, HIDDEN], F16),
        ("blk.0.attn_v.weight", [KV_HEADS * HEAD_DIM, HIDDEN], F16),
        ("blk.0.attn_output.weight", [HIDDEN, HEADS * HEAD_DIM], F16),
        ("blk.0.ffn_gate.weight", [INTERMEDIATE, HIDDEN], Q8_0),
        ("blk.0.ffn_up.weight", [INTERMEDIATE, HIDDEN], F16),
        ("blk.0.ffn_down.weight", [HIDDEN, INTERMEDIATE], Q8_0),
        ("blk.0.attn_norm.weight", [HIDDEN], F32),
        ("blk.0.ffn_norm.weight", [HIDDEN], F32),
    ]
    header = struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(metadata))
    for key, kind, v in metadata:
        header += string(key) + struct.pack("<I", kind) + value(kind, v)
    data, offset = b"", 0
    for name, shape, dtype in tensors:
        count = 1
        for d in shape:
            count *= d
        blob = encode([rng.uniform(-1, 1) for _ in range(count)], dtype)
        header += string(name) + struct.pack("<I", len(shape))
        header += b"".join(struct.pack("<Q", d) for d in reversed(shape))
        header += struct.pack("<IQ", dtype, offset)
        blob += b"\0" * (-len(blob) % ALIGNMENT)
        data += blob
        offset += len(blob)
    header += b"\0" * (-len(header) % ALIGNMENT)
    with open(full_path, "wb") as f:
        f.write(header + data)
    with open(header_path, "wb") as f:
        f.write(header)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
