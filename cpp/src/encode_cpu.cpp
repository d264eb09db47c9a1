// CPU drivers of the slot counts (encode.hpp): rows are read in blocks; per column a tight loop of
// the column's own dtype adds slot * stride into the block's cell indices, then one loop adds the
// rows to their cells. Threading and merge order are parallel.hpp's (run_chunked_ranges), so the
// weighted sums equal grouped_counts' on the same rows bit for bit.
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <vector>

#include "clarion/encode.hpp"
#include "clarion/grouped_counts.hpp"
#include "clarion/parallel.hpp"
#include "clarion/slot_stream.hpp"

namespace clarion::bias {

namespace {

// The column loops are inlined into block_cells, which is compiled twice (AVX2 and the baseline
// x86-64 ISA) and picks one at load time: integer work only, so both give the same cells.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    defined(__GLIBC__)
#define CLARION_INLINE inline __attribute__((always_inline))
#define CLARION_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLARION_INLINE inline
#define CLARION_CLONES
#endif

constexpr i64 kBlock = 512;
// Largest raw table counted through split sub-tables (slot_counts_cpu): 4 x 16 KiB of int32.
constexpr i64 kSplitCellsMax = 4096;

// cell[r] += slot(row b0 + r) * stride (and mcell[r] += lut[slot] * mstride when lut != null);
// returns the first block row with a code outside the column's slots, or -1. Cells fit int32
// (the binding refuses larger tables), so the loop vectorises over int32 lanes.
template <class Code, class A>
CLARION_INLINE i64 add_column(const Code* __restrict__ codes, i64 m, i64 offset, i64 size, i64 stride,
                              const std::int32_t* __restrict__ lut, i64 mstride,
                              std::int32_t* __restrict__ cell, std::int32_t* __restrict__ mcell) {
  using U = std::make_unsigned_t<A>;
  const auto off = static_cast<A>(offset);
  const auto lim = static_cast<U>(size);
  const auto st = static_cast<std::int32_t>(stride);
  U bad = 0;
  for (i64 r = 0; r < m; ++r) {
    const A s = static_cast<A>(codes[r]) + off;
    bad |= static_cast<U>(static_cast<U>(s) >= lim);
    cell[r] += static_cast<std::int32_t>(s) * st;
  }
  if (bad != 0) {
    for (i64 r = 0; r < m; ++r)
      if (slot_of(static_cast<i64>(codes[r]), offset, size) < 0) return r;
  }
  if (lut != nullptr) {
    const auto mst = static_cast<std::int32_t>(mstride);
    for (i64 r = 0; r < m; ++r) mcell[r] += lut[static_cast<A>(codes[r]) + off] * mst;
  }
  return -1;
}

// 8- and 16-bit codes with a small offset are shifted in int32 lanes (twice the lanes of int64).
template <class Code>
CLARION_INLINE i64 add_column_t(const Code* codes, i64 m, i64 offset, i64 size, i64 stride,
                                const std::int32_t* lut, i64 mstride, std::int32_t* cell,
                                std::int32_t* mcell) {
  if (sizeof(Code) <= 2 && offset > -(i64{1} << 24) && offset < (i64{1} << 24))
    return add_column<Code, std::int32_t>(codes, m, offset, size, stride, lut, mstride, cell, mcell);
  return add_column<Code, std::int64_t>(codes, m, offset, size, stride, lut, mstride, cell, mcell);
}

CLARION_INLINE i64 add_column_any(const SlotProblem& pb, int j, i64 b0, i64 m, std::int32_t* cell,
                                  std::int32_t* mcell, bool mapped) {
  const std::int32_t* lut = mapped ? pb.lut[j] : nullptr;
  switch (pb.itemsize[j]) {
    case 1:
      return add_column_t(static_cast<const std::int8_t*>(pb.codes[j]) + b0, m, pb.offset[j], pb.size[j],
                          pb.raw_stride[j], lut, pb.map_stride[j], cell, mcell);
    case 2:
      return add_column_t(static_cast<const std::int16_t*>(pb.codes[j]) + b0, m, pb.offset[j], pb.size[j],
                          pb.raw_stride[j], lut, pb.map_stride[j], cell, mcell);
    case 4:
      return add_column_t(static_cast<const std::int32_t*>(pb.codes[j]) + b0, m, pb.offset[j], pb.size[j],
                          pb.raw_stride[j], lut, pb.map_stride[j], cell, mcell);
    default:
      return add_column_t(static_cast<const std::int64_t*>(pb.codes[j]) + b0, m, pb.offset[j], pb.size[j],
                          pb.raw_stride[j], lut, pb.map_stride[j], cell, mcell);
  }
}

// Cells of rows [b0, b0 + m): raw (and mapped) indices, or the error of the first bad row.
CLARION_CLONES RowError block_cells(const SlotProblem& pb, i64 b0, i64 m, std::int32_t* cell,
                                    std::int32_t* mcell, bool mapped) {
  std::fill(cell, cell + m, std::int32_t{0});
  if (mapped) std::fill(mcell, mcell + m, std::int32_t{0});
  RowError err;
  for (int j = 0; j < pb.n_cols; ++j) {
    const i64 bad = add_column_any(pb, j, b0, m, cell, mcell, mapped);
    if (bad >= 0) keep_first_error(err, RowError{kErrSlot, b0 + bad, j});
  }
  return err;
}

// The range of a column: eight independent accumulators, so the loop vectorises. For int64 the
// baseline x86-64 ISA has no 64-bit vector compare, so that loop is also compiled for AVX2 and
// chosen at load time (integer work: the same result either way).
template <class T>
CLARION_INLINE void range_lanes(const T* x, i64 n, T* lo, T* hi) {
  constexpr int kLanes = 8;
  T mn[kLanes], mx[kLanes];
  for (int k = 0; k < kLanes; ++k) mn[k] = mx[k] = x[0];
  i64 i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      mn[k] = std::min(mn[k], x[i + k]);
      mx[k] = std::max(mx[k], x[i + k]);
    }
  for (; i < n; ++i) {
    mn[0] = std::min(mn[0], x[i]);
    mx[0] = std::max(mx[0], x[i]);
  }
  *lo = *std::min_element(mn, mn + kLanes);
  *hi = *std::max_element(mx, mx + kLanes);
}

CLARION_CLONES void int64_range(const std::int64_t* x, i64 n, std::int64_t* lo, std::int64_t* hi) {
  range_lanes(x, n, lo, hi);
}

}  // namespace

template <class T>
void int_range_cpu(const T* x, i64 n, T* lo, T* hi) {
  if constexpr (std::is_same_v<T, std::int64_t>)
    int64_range(x, n, lo, hi);
  else
    range_lanes(x, n, lo, hi);
}

template void int_range_cpu<std::int8_t>(const std::int8_t*, i64, std::int8_t*, std::int8_t*);
template void int_range_cpu<std::int16_t>(const std::int16_t*, i64, std::int16_t*, std::int16_t*);
template void int_range_cpu<std::int32_t>(const std::int32_t*, i64, std::int32_t*, std::int32_t*);
template void int_range_cpu<std::int64_t>(const std::int64_t*, i64, std::int64_t*, std::int64_t*);

RowError slot_counts_cpu(const SlotProblem& pb, std::int64_t* raw, int n_threads) {
  const i64 cells = pb.raw_cells();
  // Small tables: rows go round-robin to kWays private int32 sub-tables (the hot cells of a small
  // table otherwise serialise the increments on store-to-load forwarding), summed into the chunk's
  // table at the end. Integer counts, so the result is the same whatever the order.
  constexpr int kWays = 4;
  const bool split = cells > 0 && cells <= kSplitCellsMax;
  return detail::run_chunked_ranges<i64>(
      pb.n_rows, cells, n_threads, raw, [&](i64 begin, i64 end, i64* table) -> RowError {
        std::int32_t cell[kBlock];
        std::vector<std::int32_t> sub(split ? static_cast<size_t>(kWays * cells) : 0, 0);
        std::int32_t* s0 = sub.data();
        for (i64 b0 = begin; b0 < end; b0 += kBlock) {
          const i64 m = std::min(kBlock, end - b0);
          const RowError err = block_cells(pb, b0, m, cell, nullptr, false);
          if (err.what != 0) return err;
          if (!split) {
            for (i64 r = 0; r < m; ++r) table[cell[r]] += 1;
            continue;
          }
          i64 r = 0;
          for (; r + kWays <= m; r += kWays) {
            s0[cell[r]] += 1;
            s0[cells + cell[r + 1]] += 1;
            s0[2 * cells + cell[r + 2]] += 1;
            s0[3 * cells + cell[r + 3]] += 1;
          }
          for (; r < m; ++r) s0[cell[r]] += 1;
        }
        if (split)  // a chunk holds at most kRowsPerChunk rows: each sub-table count fits int32
          for (i64 c = 0; c < cells; ++c)
            table[c] += static_cast<i64>(s0[c]) + s0[cells + c] + s0[2 * cells + c] + s0[3 * cells + c];
        return RowError{};
      });
}

RowError slot_weighted_counts_cpu(const SlotProblem& pb, const double* weights, i64 mapped_cells,
                                  double* mapped, std::int64_t* raw, int n_threads) {
  const i64 raw_cells = pb.raw_cells();
  // The final cell of each raw cell (sum_j lut_j[slot_j] * map_stride_j): one lookup per row
  // instead of one per column.
  std::vector<std::int32_t> to_mapped(static_cast<size_t>(raw_cells));
  for (i64 c = 0; c < raw_cells; ++c) {
    i64 rest = c, v = 0;
    for (int j = 0; j < pb.n_cols; ++j) {
      const i64 slot = rest / pb.raw_stride[j];
      rest -= slot * pb.raw_stride[j];
      v += static_cast<i64>(pb.lut[j][slot]) * pb.map_stride[j];
    }
    to_mapped[static_cast<size_t>(c)] = static_cast<std::int32_t>(v);
  }
  std::mutex lock;
  std::vector<std::vector<i64>> sides;  // one occurrence table per chunk (claimed under the lock)
  const RowError err = detail::run_chunked_ranges<double>(
      pb.n_rows, mapped_cells, n_threads, mapped, [&](i64 begin, i64 end, double* table) -> RowError {
        i64* occ = nullptr;
        {
          std::lock_guard<std::mutex> g(lock);
          sides.emplace_back(static_cast<size_t>(raw_cells), i64{0});
          occ = sides.back().data();
        }
        const std::int32_t* tm = to_mapped.data();
        std::int32_t cell[kBlock];
        for (i64 b0 = begin; b0 < end; b0 += kBlock) {
          const i64 m = std::min(kBlock, end - b0);
          const RowError e = block_cells(pb, b0, m, cell, nullptr, false);
          if (e.what != 0) return e;
          for (i64 r = 0; r < m; ++r) {
            const double w = weights[b0 + r];
            if (!weight_ok(w)) return RowError{kErrWeight, b0 + r, -1};
            table[tm[cell[r]]] += w;
            occ[cell[r]] += 1;
          }
        }
        return RowError{};
      });
  std::fill(raw, raw + raw_cells, i64{0});
  if (err.what != 0) return err;
  for (const auto& s : sides)
    for (i64 c = 0; c < raw_cells; ++c) raw[c] += s[static_cast<size_t>(c)];
  return err;
}

RowError slot_stream_count(const StreamPlan& plan, const void* const* codes, const double* weights, i64 n,
                           int n_threads, StreamBatch& out) {
  const int F = plan.n_facets;
  const int ncols = static_cast<int>(plan.cols.size());
  out.known = true;
  out.cells.assign(plan.weighted ? 0 : static_cast<size_t>(F), {});
  out.wtable.assign(plan.weighted ? static_cast<size_t>(F) : 0, {});
  // the pattern: one byte per slot of every column, facets first (each from its own table), then
  // the shared columns from facet 0's table (every facet's table holds every row)
  size_t key_len = 0;
  for (const auto& c : plan.cols) key_len += static_cast<size_t>(c.size);
  out.key.assign(key_len, '\0');
  std::vector<size_t> key_at(static_cast<size_t>(ncols), 0);
  for (int j = 1; j < ncols; ++j)
    key_at[static_cast<size_t>(j)] =
        key_at[static_cast<size_t>(j - 1)] + static_cast<size_t>(plan.cols[j - 1].size);
  std::vector<int> shared;  // the columns after the facet: group?, label, prediction?
  if (plan.has_group) shared.push_back(plan.group_col());
  shared.push_back(plan.label_col());
  if (plan.has_pred) shared.push_back(plan.pred_col());

  std::vector<std::int64_t> raw;
  std::vector<double> mapped;
  for (int f = 0; f < F; ++f) {
    SlotProblem pb;
    pb.n_rows = n;
    std::vector<int> cols{f};
    cols.insert(cols.end(), shared.begin(), shared.end());
    pb.n_cols = static_cast<int>(cols.size());
    i64 stride = 1;
    for (int k = pb.n_cols - 1; k >= 0; --k) {
      const StreamColumn& c = plan.cols[static_cast<size_t>(cols[static_cast<size_t>(k)])];
      pb.codes[k] = codes[cols[static_cast<size_t>(k)]];
      pb.itemsize[k] = c.itemsize;
      pb.offset[k] = c.offset;
      pb.size[k] = c.size;
      pb.raw_stride[k] = stride;
      stride *= c.size;
    }
    raw.resize(static_cast<size_t>(stride));
    RowError err;
    if (!plan.weighted) {
      err = slot_counts_cpu(pb, raw.data(), n_threads);
    } else {
      // the weighted table's axes: facet (its slots, or 0/1 for selected values), group slots,
      // label (0/1), prediction (0/1): [Fm][Km][2][P], as the one-pass path counts it
      const i64 Km = plan.has_group ? plan.cols[static_cast<size_t>(plan.group_col())].size : 1;
      const i64 P = plan.P;
      const i64 mstrides[kMaxCodeColumns] = {Km * 2 * P, plan.has_group ? 2 * P : P, plan.has_group ? P : 1,
                                             1};
      for (int k = 0; k < pb.n_cols; ++k) {
        pb.lut[k] = plan.cols[static_cast<size_t>(cols[static_cast<size_t>(k)])].wmap.data();
        pb.map_stride[k] = mstrides[k];
      }
      mapped.resize(static_cast<size_t>(plan.mapped_cells[static_cast<size_t>(f)]));
      err = slot_weighted_counts_cpu(pb, weights, plan.mapped_cells[static_cast<size_t>(f)], mapped.data(),
                                     raw.data(), n_threads);
    }
    if (err.what != 0) return err;
    // One walk over the raw table (four nested loops, absent columns as one-slot axes): the
    // present slots of each column (the facet's from every facet's table, the shared columns'
    // from facet 0's) and, unweighted, each occupied cell's count-table cell
    // ((v * K + k) * 2 + y) * P + p through the columns' slot -> code tables.
    const int nc = pb.n_cols;
    // presence marks of the columns whose presence this table does not give (never read)
    std::vector<char> sink(static_cast<size_t>(*std::max_element(pb.size, pb.size + nc)), 0);
    static const std::int32_t zero_code[1] = {0};
    char* ckey[kMaxCodeColumns];
    const std::int32_t* code[kMaxCodeColumns];
    i64 mult[kMaxCodeColumns], dim[kMaxCodeColumns];
    for (int k = 0; k < kMaxCodeColumns; ++k) {
      if (k >= nc) {
        ckey[k] = sink.data();
        code[k] = zero_code;
        mult[k] = 0;
        dim[k] = 1;
        continue;
      }
      const int j = cols[static_cast<size_t>(k)];
      ckey[k] = (k == 0 || f == 0) ? &out.key[key_at[static_cast<size_t>(j)]] : sink.data();
      code[k] = plan.cols[static_cast<size_t>(j)].code.data();
      mult[k] = k == 0 ? plan.K * 2 * plan.P
                       : (j == plan.label_col() ? plan.P
                                                : (j == plan.pred_col() && plan.has_pred ? 1 : 2 * plan.P));
      dim[k] = pb.size[k];
    }
    std::vector<i64>* cells = plan.weighted ? nullptr : &out.cells[static_cast<size_t>(f)];
    if (cells != nullptr) cells->reserve(static_cast<size_t>(2 * std::min<i64>(stride, n)));
    bool uncoded = false;
    const std::int64_t* r = raw.data();
    for (i64 s0 = 0; s0 < dim[0]; ++s0) {
      const std::int32_t c0 = code[0][s0];
      for (i64 s1 = 0; s1 < dim[1]; ++s1) {
        const std::int32_t c1 = code[1][s1];
        for (i64 s2 = 0; s2 < dim[2]; ++s2) {
          const std::int32_t c2 = code[2][s2];
          const i64 base = c0 * mult[0] + c1 * mult[1] + c2 * mult[2];
          const bool bad = (c0 | c1 | c2) < 0;
          for (i64 s3 = 0; s3 < dim[3]; ++s3, ++r) {
            const std::int64_t cnt = *r;
            if (cnt == 0) continue;
            ckey[0][s0] = 1;
            ckey[1][s1] = 1;
            ckey[2][s2] = 1;
            ckey[3][s3] = 1;
            const std::int32_t c3 = code[3][s3];
            if (bad || c3 < 0) {
              uncoded = true;
              continue;
            }
            if (cells != nullptr) {
              cells->push_back(base + c3 * mult[3]);
              cells->push_back(cnt);
            }
          }
        }
      }
    }
    if (uncoded) out.known = false;
    if (!out.known) return RowError{};
    const i64 K = plan.K, P = plan.P;
    const StreamColumn& fc = plan.cols[static_cast<size_t>(f)];
    if (!plan.weighted) continue;
    // the weighted sums, one-to-one onto the codes (the occurring facet slots of a vocabulary
    // facet, both codes of a selected facet; the occurring group slots)
    auto& tab = out.wtable[static_cast<size_t>(f)];
    tab.assign(static_cast<size_t>(plan.table_cells(f)), 0.0);
    const bool fslots = plan.facet_slots[static_cast<size_t>(f)];
    const i64 Fm = fslots ? fc.size : 2;
    const i64 Km = plan.has_group ? plan.cols[static_cast<size_t>(plan.group_col())].size : 1;
    const char* fk = &out.key[key_at[static_cast<size_t>(f)]];
    const char* gk = plan.has_group ? &out.key[key_at[static_cast<size_t>(plan.group_col())]] : nullptr;
    for (i64 fs = 0; fs < Fm; ++fs) {
      if (fslots && fk[fs] == 0) continue;
      const i64 v = fslots ? fc.code[static_cast<size_t>(fs)] : fs;
      for (i64 gs = 0; gs < Km; ++gs) {
        if (gk != nullptr && gk[gs] == 0) continue;
        const i64 g = gk != nullptr
                          ? plan.cols[static_cast<size_t>(plan.group_col())].code[static_cast<size_t>(gs)]
                          : 0;
        for (i64 c = 0; c < 2 * P; ++c)
          tab[static_cast<size_t>((v * K + g) * 2 * P + c)] =
              mapped[static_cast<size_t>((fs * Km + gs) * 2 * P + c)];
      }
    }
  }
  return RowError{};
}

}  // namespace clarion::bias
