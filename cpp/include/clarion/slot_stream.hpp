// The steady state of a bias Accumulator's stream (issue 21, part 2): one batch of a stream whose
// columns keep their slot maps (the same categorical dtype, integer range, boolean) and whose
// values were all seen before, counted, checked and mapped to its count-table cells in one call.
//
// A stream's batch is counted per facet into the raw slot table of encode.hpp (slot_counts_cpu, or
// slot_weighted_counts_cpu with weights), which also says which slots of each column occur. Those
// "present" sets are the batch's *pattern*: everything the general path checks or records about a
// batch's values (missing labels or groups, values matched against label_values / facet_values,
// predicted labels against labels, vocabulary codes) is a function of them, so a batch whose
// pattern was accepted before (the caller lists accepted patterns, after the general path counted
// a batch with that pattern) needs no check and adds no value: only its counts. Those are the raw
// table mapped through per-column slot -> code tables into the facet's count table
// [V][K][2][P] (unweighted: integer sums, any order), or, with weights, the weighted driver's sums
// (grouped_counts' summation order) scattered one-to-one onto the codes: the same numbers as the
// general path, bit for bit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "clarion/common.hpp"
#include "clarion/encode.hpp"

namespace clarion::bias {

// One code column of a stream: slot = code + offset (slot 0: a missing value), size slots.
struct StreamColumn {
  int itemsize = 1;  // 1, 2, 4, 8 (signed integers; a boolean column is read as int8)
  bool boolean = false;
  i64 offset = 0;
  i64 size = 1;
  // slot -> its final index on the count table's axis: the vocabulary code (facet, group), or
  // 0/1 (a selected facet value, a positive label or prediction); -1: a value without a code yet
  std::vector<std::int32_t> code;
  // weighted driver only: slot -> index on the weighted table's axis (slots for a vocabulary
  // facet and the group, codes for the others), as the one-pass path counts it
  std::vector<std::int32_t> wmap;
};

// Columns are [facet_0 .. facet_{F-1}, group?, label, prediction?].
struct StreamPlan {
  int n_facets = 1;
  bool has_group = false;
  bool has_pred = false;
  bool weighted = false;
  i64 K = 1;  // group codes (1 without a group variable)
  i64 P = 1;  // 2 with a prediction column
  std::vector<StreamColumn> cols;
  std::vector<i64> V;             // facet codes, per facet
  std::vector<bool> facet_slots;  // weighted: the facet's weighted axis is its slots (vocabulary facet)
  std::vector<i64> mapped_cells;  // weighted: Fm * Km * 2 * P, per facet
  // Non-zero: this plan's serial number (unique in the process, never reused), which lets a
  // StreamBatch reuse its last walk over the slot tables for the next batch of the same plan
  // (see StreamBatch::walked_for). 0: no reuse.
  std::uint64_t serial = 0;

  int group_col() const { return n_facets; }
  int label_col() const { return n_facets + (has_group ? 1 : 0); }
  int pred_col() const { return label_col() + 1; }
  i64 table_cells(int f) const { return V[static_cast<size_t>(f)] * K * 2 * P; }
};

// One batch of a stream, counted (nothing shared touched). Reused from batch to batch: the
// vectors keep their capacity.
struct StreamBatch {
  std::string key;    // the pattern: per column [F facets, group?, label, prediction?], one byte per slot
  bool known = true;  // every occurring slot has a code
  std::vector<std::vector<i64>> cells;      // unweighted, per facet: (cell, count) pairs, flattened
  std::vector<std::vector<double>> wtable;  // weighted, per facet: the batch's table [V][K][2][P]
  // scratch: the slot table being walked, the weighted driver's sums, where each column's bytes
  // start in the key
  std::vector<std::int64_t> raw;
  std::vector<double> mapped;
  std::vector<size_t> key_at;
  // Unweighted batches of a plan with a serial: each facet's slot table (raws), and what the last
  // walk over them found: per facet which cells were occupied (a byte each) and its coded cells as
  // (slot-table cell, count-table cell) pairs, and the pattern. The pattern, `known` and the pairs
  // are functions of the occupied cells alone (the plan's code tables do not change), so a batch
  // of the same plan (walked_for) that occupies the same cells takes them over and only gathers its
  // counts: ~0.1 us instead of a walk over every cell of every table (~0.6 us for 594 cells).
  std::vector<std::vector<std::int64_t>> raws;
  std::vector<std::vector<std::uint8_t>> walked_mask;
  std::vector<std::vector<i64>> walked_cells;
  std::string walked_key;
  bool walked_known = true;
  std::uint64_t walked_for = 0;
};

// A new StreamPlan::serial (thread-safe; never 0).
std::uint64_t next_stream_serial();

// Counts one batch: codes[j] are the columns' arrays (n rows each), weights null or [n] float64.
// A non-zero RowError names a row whose code falls outside its column's slots or whose weight is
// bad (the caller then takes the general path, which reports it). Unweighted, the count pass runs
// on slot_counts_team; weighted, on slot_counts_cpu's threads above 65,536 rows.
RowError slot_stream_count(const StreamPlan& plan, const void* const* codes, const double* weights, i64 n,
                           int n_threads, StreamBatch& out);

// The pattern (out.key, out.known) of a batch the one-pass path has counted, from its slot tables:
// raws[f] is facet f's [facet][group?][label][prediction?] table over the plan's slots (no pass).
void slot_stream_pattern(const StreamPlan& plan, const std::int64_t* const* raws, StreamBatch& out);

// slot_counts_cpu for the batches of a stream: the same table, counted by the calling thread with
// a persistent team of up to n_threads - 1 helper threads (0: every core; one participant per
// 8,192 rows of the batch, two at least) that wait between passes
// instead of being started per pass; a helper that is late (or busy with another thread's pass)
// leaves its share to the caller. With n_threads = 0 the team backs off while its helpers keep
// missing (the cores are busy): the next passes count alone, then it tries again; with
// n_threads = 0 a pass over fewer than 128 KiB of codes (rows x the columns' item sizes) counts
// alone too (a helper's flush and merge cost more than it would count). Batches under 4,096
// rows, and tables over 65,536 cells, count as the one-pass path does (slot_counts_cpu on one
// thread up to 65,536 rows, on n_threads above).
RowError slot_counts_team(const SlotProblem& pb, std::int64_t* raw, int n_threads);

// Readies slot_counts_team's helpers for a pass the caller is about to offer (n_threads as there):
// starts them, wakes those asleep and keeps them watching for hold_us microseconds (at most 0.1 s)
// instead of going back to sleep. An accumulator calls it before it prepares a one-pass batch, so
// that the batch's count pass finds its helpers awake (a sleeping helper joins tens of
// microseconds late, and the caller has counted most of the pass alone by then).
void team_wake(int n_threads, i64 hold_us);

}  // namespace clarion::bias
