#!/usr/bin/env python3
"""Checks headless-Chromium screenshots of a biasprune report (stdlib only: zlib + struct).

  report_png.py page SHOT.png WIDTH HEIGHT OUT.png
      SHOT must be a valid 8-bit RGB/RGBA PNG of WIDTH x HEIGHT whose page ends above its
      bottom edge and is not blank; writes it cropped to the page's content to OUT.png.
  report_png.py plots MARKED.png COUNT
      MARKED is a screenshot of the report with every <svg> outlined in magenta; there must
      be COUNT outlined boxes, each of a sensible size and with drawn content inside.
  report_png.py crop SHOT.png Y0 Y1 OUT.png
      Writes rows Y0..Y1 of SHOT to OUT (for looking at parts of a tall page).

Exit status 0 when the check passes, 1 with a message on stderr when it fails, 2 on bad usage.
"""

import struct
import sys
import zlib

MAGENTA = b"\xff\x00\xff"
MIN_EDGE = 120  # a plot's outline is at least this many pixels wide
BACKGROUND_ROWS = 40  # the page must end this many rows above the screenshot's bottom


class CheckFailed(Exception):
    """A check failed; the message says what was expected and what was found."""


def read_png(path):
    """Returns (width, height, rows) with each row as RGB bytes."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise CheckFailed(f"{path}: not a PNG file (bad signature)")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise CheckFailed(f"{path}: no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace != 0:
        raise CheckFailed(f"{path}: expected 8-bit RGB or RGBA without interlacing, found {header}")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    rows = unfilter(raw, width * channels, height, channels, path)
    if channels == 4:
        rows = [bytes(b for i, b in enumerate(row) if i % 4 != 3) for row in rows]
    return width, height, rows


def unfilter(raw, stride, height, bpp, path):
    if len(raw) != height * (stride + 1):
        raise CheckFailed(f"{path}: image data has {len(raw)} bytes, expected {height * (stride + 1)}")
    rows, prior = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        if kind == 0:
            out = bytes(line)
        elif kind == 2:
            out = add_bytes(line, prior)
        else:
            out = unfilter_sequential(kind, line, prior, bpp, path)
        rows.append(out)
        prior = out
    return rows


def add_bytes(a, b):
    """Bytewise (a + b) mod 256 of two equal-length byte strings, without carries."""
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    low = int.from_bytes(b"\x7f" * len(a), "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & ~low & ((1 << (8 * len(a))) - 1))).to_bytes(len(a), "big")


def unfilter_sequential(kind, line, prior, bpp, path):
    out = bytearray(line)
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        if kind == 1:
            out[i] = (out[i] + left) & 0xFF
        elif kind == 3:
            out[i] = (out[i] + ((left + prior[i]) >> 1)) & 0xFF
        elif kind == 4:
            up, corner = prior[i], prior[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            out[i] = (out[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        else:
            raise CheckFailed(f"{path}: unknown PNG filter type {kind}")
    return bytes(out)


def write_png(path, width, rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
    data = zlib.compress(b"".join(b"\x00" + row for row in rows), 9)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def is_uniform(row):
    return row == row[:3] * (len(row) // 3)


def check_page(path, width, height, out):
    w, h, rows = read_png(path)
    if (w, h) != (width, height):
        raise CheckFailed(f"{path}: expected a {width}x{height} screenshot, found {w}x{h}")
    background = rows[-1][:3]
    tail = rows[-BACKGROUND_ROWS:]
    if not all(is_uniform(r) and r[:3] == background for r in tail):
        raise CheckFailed(f"{path}: the page reaches the bottom of the {height}-pixel window; rerun with a taller one")
    last = max(y for y, r in enumerate(rows) if not (is_uniform(r) and r[:3] == background))
    page = rows[: last + 1]
    drawn = sum(w - row.count(b"\xff\xff\xff") - row.count(background) for row in page)
    share = drawn / (w * len(page))
    if share < 0.03:
        raise CheckFailed(f"{path}: the page looks blank ({share:.2%} of its pixels are neither white nor background)")
    write_png(out, w, rows[: min(height, last + 24)])
    print(f"page: {w}x{last + 1} pixels of content, {share:.1%} drawn; written to {out}")


def magenta_runs(row):
    """(start, end) pixel spans of at least MIN_EDGE magenta pixels in an RGB row."""
    runs, x, n = [], 0, len(row) // 3
    while x < n:
        at = row.find(MAGENTA, 3 * x)
        if at < 0:
            break
        if at % 3:
            x = at // 3 + 1
            continue
        start = end = at // 3
        while end < n and row[3 * end : 3 * end + 3] == MAGENTA:
            end += 1
        if end - start >= MIN_EDGE:
            runs.append((start, end))
        x = end + 1
    return runs


def outlined_boxes(rows):
    """Boxes (x0, y0, x1, y1, interior) whose top and bottom edges are magenta runs of the
    same span; `interior` excludes the outline."""
    bands = {}
    for y, row in enumerate(rows):
        for span in magenta_runs(row):
            edges = bands.setdefault(span, [])
            if edges and edges[-1][1] == y - 1:
                edges[-1][1] = y
            else:
                edges.append([y, y])
    boxes = []
    for (x0, x1), edges in sorted(bands.items()):
        for top, bottom in zip(edges[0::2], edges[1::2]):
            boxes.append((x0, top[0], x1, bottom[1], (x0 + 4, top[1] + 1, x1 - 4, bottom[0])))
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def check_plots(path, count):
    w, h, rows = read_png(path)
    boxes = outlined_boxes(rows)
    if len(boxes) != count:
        found = ", ".join(f"{x1 - x0}x{y1 - y0} at ({x0}, {y0})" for x0, y0, x1, y1, _ in boxes) or "none"
        raise CheckFailed(f"{path}: expected {count} visible plots, found {len(boxes)}: {found}")
    for index, (x0, y0, x1, y1, (ix0, iy0, ix1, iy1)) in enumerate(boxes, 1):
        if x1 - x0 < 300 or y1 - y0 < 150:
            raise CheckFailed(f"plot {index} at ({x0}, {y0}) is only {x1 - x0}x{y1 - y0} pixels, expected >= 300x150")
        area = rows[iy0:iy1]
        drawn = sum((ix1 - ix0) - row[3 * ix0 : 3 * ix1].count(b"\xff\xff\xff") for row in area)
        share = drawn / max(1, (ix1 - ix0) * (iy1 - iy0))
        if share < 0.01:
            raise CheckFailed(f"plot {index} at ({x0}, {y0}) looks empty: {share:.2%} non-white pixels")
        print(f"plot {index}: {x1 - x0}x{y1 - y0} at ({x0}, {y0}), {share:.1%} drawn")


def main(args):
    try:
        if len(args) == 5 and args[0] == "page":
            check_page(args[1], int(args[2]), int(args[3]), args[4])
        elif len(args) == 3 and args[0] == "plots":
            check_plots(args[1], int(args[2]))
        elif len(args) == 5 and args[0] == "crop":
            w, _, rows = read_png(args[1])
            write_png(args[4], w, rows[int(args[2]) : int(args[3])])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except CheckFailed as failure:
        print(f"check-report: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
