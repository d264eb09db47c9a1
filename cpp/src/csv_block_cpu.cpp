// A block of plain CSV lines parsed into typed columns (clarion/csv_block.hpp): the block cut at
// line starts into parts, each part scanned once byte by byte (a class table finds the field ends
// and the bytes that decline), its numbers parsed in place and its text values coded by an
// open-addressing hash table of its own; the parts' tables are merged in part order.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>

#include "clarion/bytes_hash.hpp"
#include "clarion/csv_block.hpp"
#include "clarion/parallel.hpp"

namespace clarion::io {

namespace {

constexpr i64 kSampleBytes = 1 << 16;

// What a byte is to the field scan (0: an ordinary ASCII byte).
enum : std::uint8_t { kPlain = 0, kComma = 1, kNewline = 2, kQuote = 3, kCr = 4, kHigh = 5 };

struct ByteClass {
  std::uint8_t of[256];
  constexpr ByteClass() : of{} {
    for (int c = 0x80; c < 256; ++c) of[c] = kHigh;
    of[static_cast<int>(',')] = kComma;
    of[static_cast<int>('\n')] = kNewline;
    of[static_cast<int>('"')] = kQuote;
    of[static_cast<int>('\r')] = kCr;
  }
};
constexpr ByteClass kClass{};

// Strict UTF-8 (what Python's decoder takes): no overlong form, no surrogate, at most U+10FFFF.
bool valid_utf8(const std::uint8_t* p, i64 len) {
  i64 i = 0;
  while (i < len) {
    const std::uint8_t c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int more = 0;
    std::uint8_t lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c >= 0xC2 && c <= 0xDF) {
      more = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + more >= len) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (int k = 2; k <= more; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
    i += more + 1;
  }
  return true;
}

// The distinct values of a text column (of a part, then of the block): each code's hash, first
// 8 bytes, bytes (a range of the block) and first row, and an open-addressing table (at most half
// full) of code + 1 by the hash's high bits.
struct Dict {
  const std::uint8_t* data = nullptr;
  std::vector<std::uint64_t> hash, word;
  std::vector<i64> start, len, first;
  std::vector<std::int32_t> table;
  int shift = 58;

  void init(const std::uint8_t* d) {
    data = d;
    table.assign(64, 0);
    shift = 58;
  }

  // The code of the value data[s .. s + l) (hash h, first word w), or -1; *at: its slot or the
  // empty one where it goes.
  std::int32_t find(std::uint64_t h, std::uint64_t w, i64 s, i64 l, std::size_t* at) const {
    const std::size_t mask = table.size() - 1;
    std::size_t k = static_cast<std::size_t>(h >> shift);
    for (;;) {
      const std::int32_t c1 = table[k];
      if (c1 == 0) break;
      const std::size_t c = static_cast<std::size_t>(c1 - 1);
      if (hash[c] == h && len[c] == l && word[c] == w &&
          (l <= 8 || std::memcmp(data + start[c] + 8, data + s + 8, static_cast<std::size_t>(l - 8)) == 0)) {
        *at = k;
        return c1 - 1;
      }
      k = (k + 1) & mask;
    }
    *at = k;
    return -1;
  }

  std::int32_t add(std::size_t at, std::uint64_t h, std::uint64_t w, i64 s, i64 l, i64 row) {
    const auto code = static_cast<std::int32_t>(hash.size());
    hash.push_back(h);
    word.push_back(w);
    start.push_back(s);
    len.push_back(l);
    first.push_back(row);
    table[at] = code + 1;
    if (2 * hash.size() > table.size()) {  // grow: re-insert every value
      const std::size_t cap = table.size() * 2;
      --shift;
      table.assign(cap, 0);
      for (std::size_t c = 0; c < hash.size(); ++c) {
        std::size_t k = static_cast<std::size_t>(hash[c] >> shift);
        while (table[k] != 0) k = (k + 1) & (cap - 1);
        table[k] = static_cast<std::int32_t>(c + 1);
      }
    }
    return code;
  }
};

struct Problem {
  int status = kCsvOk;
  i64 line = 0;    // 0-based within the part
  i64 field = 0;   // 0-based
  i64 fields = 0;  // kCsvFieldCount: the line's field count (-1: more than n_fields)
  int kind = 0;    // the column's kind
};

struct Part {
  i64 begin = 0, end = 0;  // bytes of the block
  i64 lines = 0, rows = 0;
  Problem problem;
  bool overflow = false;  // more rows than the bound (never: a row takes n_fields bytes at least)
  std::vector<RawVector<i64>> ints;
  std::vector<RawVector<double>> floats;
  std::vector<RawVector<std::int32_t>> codes;
  std::vector<Dict> dicts;
};

struct Ctx {
  const std::uint8_t* data;
  i64 n;
  const std::int8_t* kinds;
  i64 n_fields;
};

constexpr double kTwo63 = 9223372036854775808.0;

// An int64 field [s, e): the status (kCsvOk and *out set, or why not).
inline int parse_int(const std::uint8_t* d, i64 s, i64 e, i64* out) {
  if (s == e) return kCsvEmpty;
  const bool neg = d[s] == '-';
  i64 i = s + (neg ? 1 : 0);
  if (i == e) return kCsvNumber;
  for (i64 j = i; j < e; ++j)
    if (d[j] < '0' || d[j] > '9') return kCsvNumber;
  if (e - i > 18) return kCsvRange;
  i64 v = 0;
  for (; i < e; ++i) v = v * 10 + (d[i] - '0');
  *out = neg ? -v : v;
  return kCsvOk;
}

inline bool digit(std::uint8_t c) { return c >= '0' && c <= '9'; }

// A float64 field [s, e): -?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?, correctly rounded.
inline int parse_float(const std::uint8_t* d, i64 s, i64 e, double* out) {
  if (s == e) return kCsvEmpty;
  i64 i = s;
  if (d[i] == '-') ++i;
  const i64 m0 = i;
  while (i < e && digit(d[i])) ++i;
  if (i == m0) return kCsvNumber;
  if (i < e && d[i] == '.') {
    const i64 f0 = ++i;
    while (i < e && digit(d[i])) ++i;
    if (i == f0) return kCsvNumber;
  }
  const i64 mantissa_end = i;
  if (i < e && (d[i] == 'e' || d[i] == 'E')) {
    ++i;
    if (i < e && (d[i] == '+' || d[i] == '-')) ++i;
    const i64 x0 = i;
    while (i < e && digit(d[i])) ++i;
    if (i == x0 || i - x0 > 4) return kCsvNumber;
  }
  if (i != e) return kCsvNumber;
  double v = 0.0;
  const char* first = reinterpret_cast<const char*>(d + s);
  const char* last = reinterpret_cast<const char*>(d + e);
  const std::from_chars_result r = std::from_chars(first, last, v, std::chars_format::general);
  if (r.ec != std::errc() || r.ptr != last) return kCsvRange;  // (the grammar leaves only a range error)
  const double a = std::fabs(v);
  if (!std::isfinite(v) || a >= kTwo63 || (a > 0.0 && a < std::numeric_limits<double>::min()))
    return kCsvRange;
  if (a == 0.0)
    for (i64 j = m0; j < mantissa_end; ++j)
      if (d[j] >= '1' && d[j] <= '9') return kCsvRange;  // underflow to zero
  *out = v;
  return kCsvOk;
}

constexpr double kPow10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

// Whether a field ends at p: the block's end (*stop 0), a comma (1) or the line's end ('\n' or
// "\r\n": 2); *next is where what follows starts.
inline bool field_end(const std::uint8_t* d, i64 p, i64 end, int* stop, i64* next) {
  if (p == end) {
    *stop = 0;
    *next = end;
    return true;
  }
  const std::uint8_t c = d[p];
  if (c == ',' || c == '\n') {
    *stop = c == ',' ? 1 : 2;
    *next = p + 1;
    return true;
  }
  if (c == '\r' && p + 1 < end && d[p + 1] == '\n') {
    *stop = 2;
    *next = p + 2;
    return true;
  }
  return false;
}

// The fast forms of a field starting at s, each ending where field_end says (false: the field is
// of another form, read by the general scan): -?[0-9]{1,18}; -?[0-9]+(\.[0-9]+)? of at most 15
// digits (m / 10^k with m < 2**53 and k <= 15: both exact, so the quotient is correctly rounded,
// as from_chars rounds); plain ASCII bytes (no comma, quote or control byte of the scan).
inline bool fast_int(const std::uint8_t* d, i64 s, i64 end, i64* v, int* stop, i64* next) {
  i64 p = s;
  const bool neg = p < end && d[p] == '-';
  if (neg) ++p;
  const i64 d0 = p;
  std::uint64_t m = 0;
  while (p < end && digit(d[p])) m = m * 10 + (d[p++] - '0');
  const i64 nd = p - d0;
  if (nd < 1 || nd > 18 || !field_end(d, p, end, stop, next)) return false;
  *v = neg ? -static_cast<i64>(m) : static_cast<i64>(m);
  return true;
}

inline bool fast_float(const std::uint8_t* d, i64 s, i64 end, double* v, int* stop, i64* next) {
  i64 p = s;
  const bool neg = p < end && d[p] == '-';
  if (neg) ++p;
  const i64 d0 = p;
  std::uint64_t m = 0;
  while (p < end && digit(d[p])) m = m * 10 + (d[p++] - '0');
  i64 nd = p - d0, frac = 0;
  if (nd < 1) return false;
  if (p < end && d[p] == '.') {
    const i64 f0 = ++p;
    while (p < end && digit(d[p])) m = m * 10 + (d[p++] - '0');
    frac = p - f0;
    if (frac < 1) return false;
    nd += frac;
  }
  if (nd > 15 || !field_end(d, p, end, stop, next)) return false;
  const double x = static_cast<double>(m) / kPow10[frac];
  *v = neg ? -x : x;
  return true;
}

inline i64 fast_text(const std::uint8_t* d, i64 s, i64 end, int* stop, i64* next) {
  i64 p = s;
  while (p < end && kClass.of[d[p]] == kPlain) ++p;
  return field_end(d, p, end, stop, next) ? p : -1;
}

void parse_part(const Ctx& cx, Part& pt) {
  const std::uint8_t* d = cx.data;
  const i64 end = pt.end, nf = cx.n_fields, n = cx.n;
  const std::int8_t* kinds = cx.kinds;
  auto fail = [&pt](int status, i64 line, i64 field, i64 fields, int kind) {
    pt.problem = Problem{status, line, field, fields, kind};
  };
  // every column sized to a bound of the part's rows (a row's line holds n_fields - 1 commas and a
  // line break, or one byte and a line break: n_fields bytes or 2 at least, the last line's break
  // aside; a declined line writes at most one row past them), written through raw pointers
  const i64 cap = (end - pt.begin) / std::max<i64>(nf, 2) + 2;
  std::vector<i64*> ints(static_cast<std::size_t>(nf), nullptr);
  std::vector<double*> floats(static_cast<std::size_t>(nf), nullptr);
  std::vector<std::int32_t*> codes(static_cast<std::size_t>(nf), nullptr);
  for (i64 f = 0; f < nf; ++f) {
    if (kinds[f] == kCsvInt64)
      ints[f] = (pt.ints[f].resize(static_cast<std::size_t>(cap)), pt.ints[f].data());
    if (kinds[f] == kCsvFloat64)
      floats[f] = (pt.floats[f].resize(static_cast<std::size_t>(cap)), pt.floats[f].data());
    if (kinds[f] == kCsvText)
      codes[f] = (pt.codes[f].resize(static_cast<std::size_t>(cap)), pt.codes[f].data());
  }
  auto finish = [&pt, &cx, nf](i64 rows, i64 lines) {
    pt.rows = rows;
    pt.lines = lines;
    for (i64 f = 0; f < nf; ++f) {
      if (cx.kinds[f] == kCsvInt64) pt.ints[f].resize(static_cast<std::size_t>(rows));
      if (cx.kinds[f] == kCsvFloat64) pt.floats[f].resize(static_cast<std::size_t>(rows));
      if (cx.kinds[f] == kCsvText) pt.codes[f].resize(static_cast<std::size_t>(rows));
    }
  };
  i64 p = pt.begin, line = 0, rows = 0;
  while (p < end) {
    if (rows + 1 >= cap) {  // (a guard: the bound holds for every block)
      pt.overflow = true;
      return;
    }
    if (d[p] == '\n') {  // a blank line
      ++line;
      ++p;
      continue;
    }
    if (d[p] == '\r' && p + 1 < end && d[p + 1] == '\n') {
      ++line;
      p += 2;
      continue;
    }
    i64 f = 0, s = p, next = end;
    for (;;) {
      int stop = 0;  // 0: the block's end, 1: a comma, 2: the line's end
      const int kind = f < nf ? kinds[f] : -1;
      // the fast forms first (a field of another form: the general scan, in the contract's order)
      if (kind == kCsvInt64) {
        i64 v = 0;
        if (fast_int(d, s, end, &v, &stop, &next)) {
          ints[f][rows] = v;
          goto next_field;
        }
      } else if (kind == kCsvFloat64) {
        double v = 0.0;
        if (fast_float(d, s, end, &v, &stop, &next)) {
          floats[f][rows] = v;
          goto next_field;
        }
      } else if (kind == kCsvText) {
        const i64 e = fast_text(d, s, end, &stop, &next);
        if (e >= 0) {
          Dict& dict = pt.dicts[f];
          const i64 l = e - s;
          const std::uint64_t w = head_word(d + s, l, n - s);
          const std::uint64_t h = value_hash(d + s, l, w);
          std::size_t at = 0;
          std::int32_t code = dict.find(h, w, s, l, &at);
          if (code < 0) code = dict.add(at, h, w, s, l, rows);  // (ASCII: valid UTF-8)
          codes[f][rows] = code;
          goto next_field;
        }
      } else if (kind == kCsvSkip) {
        if (fast_text(d, s, end, &stop, &next) >= 0) goto next_field;
      }
      {
        i64 e = s;
        bool high = false, cr = false;
        stop = 0;
        next = end;
        for (; e < end; ++e) {
          const std::uint8_t k = kClass.of[d[e]];
          if (k == kPlain) continue;
          if (k == kComma) {
            stop = 1;
            next = e + 1;
            break;
          }
          if (k == kNewline) {
            stop = 2;
            next = e + 1;
            break;
          }
          if (k == kQuote) return fail(kCsvQuote, line, f, 0, 0);
          if (k == kCr) {
            if (e + 1 < end && d[e + 1] == '\n') {
              stop = 2;
              next = e + 2;
              break;
            }
            cr = true;
            continue;
          }
          high = true;
        }
        if (cr) return fail(kCsvCarriage, line, f, 0, 0);
        if (f >= nf) return fail(kCsvFieldCount, line, f, -1, 0);
        int st = kCsvOk;
        if (kind == kCsvInt64) {
          i64 v = 0;
          st = parse_int(d, s, e, &v);
          if (st == kCsvOk) ints[f][rows] = v;
        } else if (kind == kCsvFloat64) {
          double v = 0.0;
          st = parse_float(d, s, e, &v);
          if (st == kCsvOk) floats[f][rows] = v;
        } else if (kind == kCsvText) {
          Dict& dict = pt.dicts[f];
          const i64 l = e - s;
          const std::uint64_t w = head_word(d + s, l, n - s);
          const std::uint64_t h = value_hash(d + s, l, w);
          std::size_t at = 0;
          std::int32_t code = dict.find(h, w, s, l, &at);
          if (code < 0) {
            if (high && !valid_utf8(d + s, l))
              st = kCsvUtf8;
            else
              code = dict.add(at, h, w, s, l, rows);
          }
          if (st == kCsvOk) codes[f][rows] = code;
        } else if (high && !valid_utf8(d + s, e - s)) {
          st = kCsvUtf8;
        }
        if (st != kCsvOk) return fail(st, line, f, 0, kind);
      }
    next_field:
      ++f;
      if (stop != 1) break;
      s = next;
    }
    if (f < nf) return fail(kCsvFieldCount, line, f - 1, f, 0);
    ++rows;
    ++line;
    p = next;
  }
  finish(rows, line);
}

std::string reason_of(const Problem& pb, i64 line, i64 n_fields) {
  const std::string at = "line " + std::to_string(line) + ", field " + std::to_string(pb.field + 1) + ": ";
  switch (pb.status) {
    case kCsvQuote: return at + "a quote character";
    case kCsvCarriage: return at + "a carriage return not followed by a line feed";
    case kCsvFieldCount:
      if (pb.fields < 0)
        return "line " + std::to_string(line) + ": more than " + std::to_string(n_fields) + " fields";
      return "line " + std::to_string(line) + ": " + std::to_string(pb.fields) + " fields, expected " +
             std::to_string(n_fields);
    case kCsvNumber:
      return at + (pb.kind == kCsvInt64 ? "not a plain integer" : "not a plain decimal number");
    case kCsvRange:
      return at + (pb.kind == kCsvInt64 ? "an integer of more than 18 digits"
                                        : "a number beyond the exact range (not finite, |v| >= 2**63, "
                                          "or below the normal range)");
    case kCsvEmpty: return at + "an empty numeric field";
    case kCsvUtf8: return at + "not valid UTF-8";
    default: return at + "unknown";
  }
}

}  // namespace

CsvBlock csv_block_cpu(const std::uint8_t* data, i64 n, const std::int8_t* kinds, i64 n_fields, int n_threads,
                       i64 part_lines) {
  CsvBlock out;
  out.columns.resize(static_cast<std::size_t>(n_fields));
  // parts: about one per part_lines lines (the line length from the first 64 KiB)
  static const int all_cores = detail::resolve_threads(0);
  const int threads = n_threads > 0 ? n_threads : all_cores;
  const i64 sample = std::min(n, kSampleBytes);
  const i64 sample_lines = std::max<i64>(1, std::count(data, data + sample, static_cast<std::uint8_t>('\n')));
  const i64 est_lines = sample > 0 ? std::max<i64>(1, n / std::max<i64>(1, sample / sample_lines)) : 0;
  const int n_parts = static_cast<int>(
      std::clamp<i64>(est_lines / (part_lines > 0 ? part_lines : kCsvPartLines), 1, std::max(1, threads)));
  std::vector<Part> parts(static_cast<std::size_t>(n_parts));
  for (int q = 0; q < n_parts; ++q) {
    Part& pt = parts[q];
    if (q == 0) {
      pt.begin = 0;
    } else {
      const i64 b = std::max<i64>(parts[q - 1].begin, q * (n / n_parts) - 1);
      const void* hit = b < n ? std::memchr(data + b, '\n', static_cast<std::size_t>(n - b)) : nullptr;
      pt.begin = hit == nullptr ? n : static_cast<const std::uint8_t*>(hit) - data + 1;
      parts[q - 1].end = pt.begin;
    }
    pt.end = n;
    pt.ints.resize(static_cast<std::size_t>(n_fields));
    pt.floats.resize(static_cast<std::size_t>(n_fields));
    pt.codes.resize(static_cast<std::size_t>(n_fields));
    pt.dicts.resize(static_cast<std::size_t>(n_fields));
    for (i64 f = 0; f < n_fields; ++f)
      if (kinds[f] == kCsvText) pt.dicts[f].init(data);
  }
  const Ctx cx{data, n, kinds, n_fields};
  // (an exception on a worker, std::bad_alloc, is raised on the calling thread after the join)
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n_parts));
  detail::parallel_for_threads(n_parts, [&](int q) {
    try {
      parse_part(cx, parts[q]);
    } catch (...) {
      errors[q] = std::current_exception();
    }
  });
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (const Part& pt : parts)
    if (pt.overflow) throw std::logic_error("csv_block_cpu: a part has more rows than its bound");

  // the first problem in block order: the first part's that has one
  i64 line0 = 0;
  for (const Part& pt : parts) {
    if (pt.problem.status != kCsvOk) {
      out.status = pt.problem.status;
      out.reason = reason_of(pt.problem, line0 + pt.problem.line + 1, n_fields);
      return out;
    }
    line0 += pt.lines;
  }
  std::vector<i64> row0(static_cast<std::size_t>(n_parts) + 1, 0);
  for (int q = 0; q < n_parts; ++q) row0[q + 1] = row0[q] + parts[q].rows;
  const i64 rows = row0[n_parts];
  out.rows = rows;

  // text: the parts' dictionaries merged in part order (part 0's is the block's to start with)
  std::vector<std::vector<std::vector<std::int32_t>>> remap(static_cast<std::size_t>(n_fields));
  for (i64 f = 0; f < n_fields; ++f) {
    if (kinds[f] != kCsvText) continue;
    Dict dict = std::move(parts[0].dicts[f]);
    remap[f].resize(static_cast<std::size_t>(n_parts));
    for (int q = 1; q < n_parts; ++q) {
      const Dict& local = parts[q].dicts[f];
      auto& m = remap[f][q];
      m.resize(local.hash.size());
      for (std::size_t c = 0; c < local.hash.size(); ++c) {
        std::size_t at = 0;
        std::int32_t code = dict.find(local.hash[c], local.word[c], local.start[c], local.len[c], &at);
        if (code < 0)
          code = dict.add(at, local.hash[c], local.word[c], local.start[c], local.len[c],
                          row0[q] + local.first[c]);
        m[c] = code;
      }
    }
    CsvColumn& col = out.columns[f];
    col.first = std::move(dict.first);
    col.value_start = std::move(dict.start);
    col.value_len = std::move(dict.len);
  }
  if (n_parts == 1) {  // (no copy: the part's columns are the block's)
    for (i64 f = 0; f < n_fields; ++f) {
      CsvColumn& col = out.columns[f];
      if (kinds[f] == kCsvInt64) col.ints.swap(parts[0].ints[f]);
      if (kinds[f] == kCsvFloat64) col.floats.swap(parts[0].floats[f]);
      if (kinds[f] == kCsvText) col.codes.swap(parts[0].codes[f]);
    }
    return out;
  }
  for (i64 f = 0; f < n_fields; ++f) {
    CsvColumn& col = out.columns[f];
    if (kinds[f] == kCsvInt64) col.ints.resize(static_cast<std::size_t>(rows));
    if (kinds[f] == kCsvFloat64) col.floats.resize(static_cast<std::size_t>(rows));
    if (kinds[f] == kCsvText) col.codes.resize(static_cast<std::size_t>(rows));
  }
  detail::parallel_for_threads(n_parts, [&](int q) {
    const Part& pt = parts[q];
    const auto at = static_cast<std::size_t>(row0[q]);
    for (i64 f = 0; f < n_fields; ++f) {
      CsvColumn& col = out.columns[f];
      if (kinds[f] == kCsvInt64) std::copy(pt.ints[f].begin(), pt.ints[f].end(), col.ints.begin() + at);
      if (kinds[f] == kCsvFloat64)
        std::copy(pt.floats[f].begin(), pt.floats[f].end(), col.floats.begin() + at);
      if (kinds[f] == kCsvText) {
        if (q == 0) {
          std::copy(pt.codes[f].begin(), pt.codes[f].end(), col.codes.begin() + at);
        } else {
          const std::int32_t* m = remap[f][q].data();
          std::int32_t* o = col.codes.data() + at;
          for (std::size_t i = 0; i < pt.codes[f].size(); ++i) o[i] = m[pt.codes[f][i]];
        }
      }
    }
  });
  return out;
}

}  // namespace clarion::io
