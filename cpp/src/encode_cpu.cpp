// CPU drivers of the slot counts (encode.hpp): rows are read in blocks; per column a tight loop of
// the column's own dtype adds slot * stride into the block's cell indices, then one loop adds the
// rows to their cells. Threading and merge order are parallel.hpp's (run_chunked_ranges), so the
// weighted sums equal grouped_counts' on the same rows bit for bit.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#if !defined(_WIN32)
#include <pthread.h>
#endif

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
// The team pass (slot_counts_team): batches of fewer rows count alone; larger tables keep the
// per-pass threads of slot_counts_cpu (a table per participant to allocate and merge)
constexpr i64 kTeamMinRows = 4096;
constexpr i64 kTeamCellsMax = i64{1} << 16;
// ... and passes of 2**31 rows or more keep them too (a helper's table holds int32 counts)
constexpr i64 kTeamMaxRows = i64{1} << 31;
// An adaptive team pass (n_threads = 0) over fewer code bytes than this counts alone. A helper's
// share has fixed costs of its own: its flush, the caller's merge of its table (cache lines that
// cross cores both ways) and the wait for its last chunk, ~2-3 us in all on a two-core machine,
// while one core counts ~1.5-2 bytes of codes a nanosecond (four int8 columns: ~0.5 ns a row).
// Measured (docs/scaling.md, "The count team's threshold and wake"): 10,000 rows of four int8 columns
// (40 KB) count in ~5.3 us alone and ~5.9 us with a helper, 20,000 rows break even, 50,000 gain
// ~30%; 10,000 rows of int64 facet and group columns (180 KB) gain ~20%.
constexpr i64 kTeamMinBytes = i64{128} << 10;

bool team_alone(const SlotProblem& pb) {
  i64 bytes = 0;
  for (int j = 0; j < pb.n_cols; ++j) bytes += pb.itemsize[j];
  return bytes * pb.n_rows < kTeamMinBytes;
}

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

// Narrow cells: a pass whose every column holds 8-bit codes with a small offset, into a table of
// at most kNarrowCellsMax cells, computes its cells in int16 lanes (twice the lanes of int32: the
// cell loops were most of a small table's pass). A code plus its offset stays within
// [-128 - kNarrowOffsetMax, 127 + kNarrowOffsetMax], so it never wraps in int16 and the range
// check sees every bad code; a bad row's cell may wrap, but the block then reports its error and
// counts nothing. Integer work: the same table as the int32 cells.
constexpr i64 kNarrowCellsMax = 32767;
constexpr i64 kNarrowOffsetMax = 16384;

bool narrow_cells(const SlotProblem& pb) {
  if (pb.n_cols <= 0 || pb.raw_cells() > kNarrowCellsMax) return false;
  for (int j = 0; j < pb.n_cols; ++j)
    if (pb.itemsize[j] != 1 || pb.offset[j] > kNarrowOffsetMax || pb.offset[j] < -kNarrowOffsetMax)
      return false;
  return true;
}

CLARION_INLINE i64 add_column_narrow(const std::int8_t* __restrict__ codes, i64 m, i64 offset, i64 size,
                                     i64 stride, std::int16_t* __restrict__ cell) {
  const auto off = static_cast<std::int16_t>(offset);
  const auto lim = static_cast<std::uint16_t>(size);
  const auto st = static_cast<std::int16_t>(stride);
  std::uint16_t bad = 0;
  for (i64 r = 0; r < m; ++r) {
    const auto s = static_cast<std::int16_t>(codes[r] + off);
    bad |= static_cast<std::uint16_t>(static_cast<std::uint16_t>(s) >= lim);
    cell[r] = static_cast<std::int16_t>(cell[r] + s * st);
  }
  if (bad != 0) {
    for (i64 r = 0; r < m; ++r)
      if (slot_of(static_cast<i64>(codes[r]), offset, size) < 0) return r;
  }
  return -1;
}

// block_cells for a narrow_cells problem.
CLARION_CLONES RowError block_cells_narrow(const SlotProblem& pb, i64 b0, i64 m, std::int16_t* cell) {
  std::fill(cell, cell + m, std::int16_t{0});
  RowError err;
  for (int j = 0; j < pb.n_cols; ++j) {
    const i64 bad = add_column_narrow(static_cast<const std::int8_t*>(pb.codes[j]) + b0, m, pb.offset[j],
                                      pb.size[j], pb.raw_stride[j], cell);
    if (bad >= 0) keep_first_error(err, RowError{kErrSlot, b0 + bad, j});
  }
  return err;
}

// The range of a column: one min and one max reduction, which GCC vectorises at -O3 (the earlier
// eight stack accumulators were not: ~1.6 ns a row for int8, slower than numpy's two reductions).
// The baseline x86-64 ISA has no signed 8-bit or 64-bit vector min / max, so the loop is also
// compiled for AVX2 and chosen at load time (integer work: the same result either way).
template <class T>
CLARION_INLINE void range_lanes(const T* x, i64 n, T* lo, T* hi) {
  T mn = x[0], mx = x[0];
  for (i64 i = 0; i < n; ++i) {
    const T v = x[i];
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  *lo = mn;
  *hi = mx;
}

CLARION_CLONES void int8_range(const std::int8_t* x, i64 n, std::int8_t* lo, std::int8_t* hi) {
  range_lanes(x, n, lo, hi);
}
CLARION_CLONES void int16_range(const std::int16_t* x, i64 n, std::int16_t* lo, std::int16_t* hi) {
  range_lanes(x, n, lo, hi);
}
CLARION_CLONES void int32_range(const std::int32_t* x, i64 n, std::int32_t* lo, std::int32_t* hi) {
  range_lanes(x, n, lo, hi);
}
CLARION_CLONES void int64_range(const std::int64_t* x, i64 n, std::int64_t* lo, std::int64_t* hi) {
  range_lanes(x, n, lo, hi);
}

}  // namespace

template <class T>
void int_range_cpu(const T* x, i64 n, T* lo, T* hi) {
  if constexpr (std::is_same_v<T, std::int64_t>)
    int64_range(x, n, lo, hi);
  else if constexpr (std::is_same_v<T, std::int32_t>)
    int32_range(x, n, lo, hi);
  else if constexpr (std::is_same_v<T, std::int16_t>)
    int16_range(x, n, lo, hi);
  else
    int8_range(x, n, lo, hi);
}

template void int_range_cpu<std::int8_t>(const std::int8_t*, i64, std::int8_t*, std::int8_t*);
template void int_range_cpu<std::int16_t>(const std::int16_t*, i64, std::int16_t*, std::int16_t*);
template void int_range_cpu<std::int32_t>(const std::int32_t*, i64, std::int32_t*, std::int32_t*);
template void int_range_cpu<std::int64_t>(const std::int64_t*, i64, std::int64_t*, std::int64_t*);

namespace {

// Small tables: rows go round-robin to kWays private int32 sub-tables (the hot cells of a small
// table otherwise serialise the increments on store-to-load forwarding), summed into the caller's
// table by flush_split. Integer counts, so the result is the same whatever the order.
constexpr int kWays = 4;

// Counts rows [begin, end) into `table` (sub == null) or into the kWays sub-tables `sub` of
// `cells` cells each (at most kMaxSplitRows rows between two flushes: each count fits int32).
CLARION_INLINE RowError cells_of(const SlotProblem& pb, i64 b0, i64 m, std::int32_t* cell) {
  return block_cells(pb, b0, m, cell, nullptr, false);
}
CLARION_INLINE RowError cells_of(const SlotProblem& pb, i64 b0, i64 m, std::int16_t* cell) {
  return block_cells_narrow(pb, b0, m, cell);
}

template <class C>
CLARION_INLINE RowError count_range_t(const SlotProblem& pb, i64 begin, i64 end, i64 cells, i64* table,
                                      std::int32_t* sub) {
  C cell[kBlock];
  for (i64 b0 = begin; b0 < end; b0 += kBlock) {
    const i64 m = std::min(kBlock, end - b0);
    const RowError err = cells_of(pb, b0, m, cell);
    if (err.what != 0) return err;
    if (sub == nullptr) {
      for (i64 r = 0; r < m; ++r) table[cell[r]] += 1;
      continue;
    }
    i64 r = 0;
    for (; r + kWays <= m; r += kWays) {
      sub[cell[r]] += 1;
      sub[cells + cell[r + 1]] += 1;
      sub[2 * cells + cell[r + 2]] += 1;
      sub[3 * cells + cell[r + 3]] += 1;
    }
    for (; r < m; ++r) sub[cell[r]] += 1;
  }
  return RowError{};
}

// `narrow`: narrow_cells(pb) (the int16 cells).
CLARION_INLINE RowError count_range(const SlotProblem& pb, i64 begin, i64 end, i64 cells, i64* table,
                                    std::int32_t* sub, bool narrow) {
  return narrow ? count_range_t<std::int16_t>(pb, begin, end, cells, table, sub)
                : count_range_t<std::int32_t>(pb, begin, end, cells, table, sub);
}

constexpr i64 kMaxSplitRows = i64{1} << 30;

void flush_split(std::int32_t* sub, i64 cells, i64* table) {
  for (i64 c = 0; c < cells; ++c) {
    table[c] += static_cast<i64>(sub[c]) + sub[cells + c] + sub[2 * cells + c] + sub[3 * cells + c];
    sub[c] = sub[cells + c] = sub[2 * cells + c] = sub[3 * cells + c] = 0;
  }
}

// flush_split into an int32 table that is written (`store`: its earlier contents ignored) or
// added to: a team helper's table, which the caller then only reads (the pass has fewer than
// 2**31 rows, so every cell fits). Written rather than added, the helper's table needs no zeroing
// between passes, and its cache lines go from core to core once a pass instead of twice (the
// caller's merge of int64 tables it then zeroed was ~0.9 us of a 10,000-row pass).
void flush_split32(std::int32_t* sub, i64 cells, std::int32_t* table, bool store) {
  for (i64 c = 0; c < cells; ++c) {
    const std::int32_t v = sub[c] + sub[cells + c] + sub[2 * cells + c] + sub[3 * cells + c];
    table[c] = store ? v : table[c] + v;
    sub[c] = sub[cells + c] = sub[2 * cells + c] = sub[3 * cells + c] = 0;
  }
}

// Forks of this process so far, as a forked child counts them (its team is not its parent's).
std::atomic<long> g_forks{0};

long fork_generation() {
#if !defined(_WIN32)
  static const int registered = pthread_atfork(nullptr, nullptr, +[] { g_forks.fetch_add(1); });
  (void)registered;
#endif
  return g_forks.load(std::memory_order_relaxed);
}

// A persistent team of helper threads for the count passes of a stream's batches
// (slot_counts_team). Starting a thread costs ~20-40 us, a quarter of a 100,000-row pass and more
// than a 10,000-row one; the team's workers stay between passes instead. A pass is offered to the
// workers and its caller counts too, chunk by chunk from a shared counter: a worker that comes
// late finds fewer chunks left (or none), so a pass never waits for a busy core. A worker that
// finished a pass watches for the next one for kSpin (yielding its core to any other runnable
// thread while it does: the batches of a stream come every few microseconds), then sleeps on a
// condition variable. One pass holds the team at a time; another thread's pass meanwhile counts
// alone. Workers never touch Python; they are detached and the team is never freed (a forked
// child, which has none of its parent's threads, builds its own).
class Team {
 public:
  using Body = void (*)(void* ctx, int participant);

  static Team& instance() {
    static std::atomic<Team*> current{nullptr};
    const long gen = fork_generation();
    Team* t = current.load(std::memory_order_acquire);
    while (t == nullptr || t->gen_ != gen) {
      Team* fresh = new Team(gen);
      if (current.compare_exchange_strong(t, fresh, std::memory_order_acq_rel)) return *fresh;
      delete fresh;  // another thread installed one: t is it now
    }
    return *t;
  }

  // Whether the team rests (the last passes missed: the cores are busy); takes one pass off.
  bool take_rest() {
    int r = rest_.load(std::memory_order_relaxed);
    while (r > 0)
      if (rest_.compare_exchange_weak(r, r - 1, std::memory_order_relaxed)) return true;
    return false;
  }

  // Readies up to `helpers` workers for a pass about to come (team_wake): starts those missing,
  // wakes sleeping ones, and keeps them watching (not sleeping) for `hold`. A worker asleep on the
  // condition variable takes tens of microseconds to run again (its core may have gone idle), so
  // a pass offered to it counts alone; woken while the caller still prepares the pass, it is
  // there when the offer comes. Nothing when another pass holds the team (its workers are awake).
  void wake(int helpers, std::chrono::microseconds hold) {
    if (helpers <= 0) return;
    bool idle = false;
    if (!busy_.compare_exchange_strong(idle, true)) return;
    grow(helpers);
    busy_.store(false);
    const auto until = std::chrono::steady_clock::now() + hold;
    hot_until_ns_.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count());
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> g(mu_);
      wakes_.fetch_add(1);
      wake_.notify_all();
    }
  }

  // Runs body(ctx, 0) on the calling thread and body(ctx, 1..k) on up to `helpers` workers that
  // take the offer before the caller is done; returns k (the participants 1..k that ran).
  // *caller_parts: the parts of the pass's n_parts the caller did itself (read after the pass).
  int run(int helpers, Body body, void* ctx, const i64* caller_parts, i64 n_parts) {
    bool idle = false;
    if (helpers <= 0 || !busy_.compare_exchange_strong(idle, true)) {
      body(ctx, 0);
      return 0;
    }
    grow(helpers);
    const int offered = std::min(helpers, workers_.load());
    if (offered <= 0) {
      busy_.store(false);
      body(ctx, 0);
      return 0;
    }
    // the offer: a worker that sees seq_ odd takes part (running_ first, then seq_ again: the
    // caller, which closes seq_ before it reads running_, then waits for it; seq_cst both ways)
    body_ = body;
    ctx_ = ctx;
    helpers_ = offered;
    joined_.store(0);
    first_join_ns_.store(0);
    const auto offered_at = std::chrono::steady_clock::now();
    offered_at_ = offered_at;
    const std::uint64_t open = seq_.load() + 1;
    seq_.store(open);
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> g(mu_);
      wake_.notify_all();
    }
    body(ctx, 0);
    seq_.store(open + 1);  // closed: no worker joins from here on
    std::chrono::steady_clock::time_point waited_from{};
    if (running_.load() != 0) waited_from = std::chrono::steady_clock::now();
    for (int spins = 0; running_.load() != 0; ++spins) pause(spins);
    const int joined = std::min(joined_.load(), offered);
    // A pass no worker helped, or one that a worker joined late (it had no core of its own) or
    // whose caller then waited long for one (preempted by another process) is a miss; after
    // kMisses in a row the passes count alone for the next kRest (the cores are busy: a helper
    // would only take time from the caller), then try again.
    // So is one whose helpers did under half their share of the parts (they ran, but slowly:
    // their cores are shared with other work).
    bool miss = joined == 0 || std::chrono::nanoseconds(first_join_ns_.load()) > kLate;
    if (!miss && waited_from != std::chrono::steady_clock::time_point{})
      miss = std::chrono::steady_clock::now() - waited_from > kLate;
    if (!miss) miss = 2 * (n_parts - *caller_parts) * (joined + 1) < static_cast<i64>(joined) * n_parts;
    misses_ = miss ? misses_ + 1 : 0;
    if (misses_ >= kMisses) {
      misses_ = 0;
      rest_.store(kRest);
    }
    busy_.store(false);
    return joined;
  }

 private:
  explicit Team(long gen) : gen_(gen) {}

  static void pause(int spins) {
    if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }

  // Whether a worker that has watched since `start` may sleep: past kSpin, and past the hold of
  // the last wake.
  bool idle_for(std::chrono::steady_clock::time_point start) const {
    const auto now = std::chrono::steady_clock::now();
    if (now - start <= kSpin) return false;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() >
           hot_until_ns_.load();
  }

  void grow(int want) {  // under busy_
    want = std::min(want, kMaxWorkers);
    while (workers_.load() < want) {
      try {
        std::thread([this] { loop(); }).detach();
      } catch (const std::system_error&) {
        return;  // no more threads: the passes count with the workers there are
      }
      workers_.fetch_add(1);
    }
  }

  void loop() {
    std::uint64_t seen = seq_.load();
    bool surplus = false;  // the last offer had no part left for this worker: sleep at once
    for (;;) {
      // wait for an offer newer than the last one seen: watch, then sleep
      std::uint64_t s = seq_.load();
      const auto start = std::chrono::steady_clock::now();
      for (int spins = 0; s == seen || (s & 1) == 0; ++spins) {
        if (surplus || ((spins & 255) == 255 && idle_for(start))) {
          const bool forced = surplus;
          surplus = false;
          std::unique_lock<std::mutex> lk(mu_);
          const std::uint64_t woken = wakes_.load();
          sleepers_.fetch_add(1);
          // (checked again once counted among the sleepers: a wake() that set its hold before
          // then is seen here, one after it sees this worker asleep and notifies)
          if (forced || idle_for(start))
            wake_.wait(lk, [&] {
              const std::uint64_t t = seq_.load();
              return (t != seen && (t & 1) != 0) || wakes_.load() != woken;
            });
          sleepers_.fetch_sub(1);
        } else {
          pause(spins);
        }
        s = seq_.load();
        if (s != seen && (s & 1) == 0) seen = s;  // an offer came and went meanwhile
      }
      seen = s;
      running_.fetch_add(1);
      if (seq_.load() == s) {
        const int id = joined_.fetch_add(1) + 1;
        if (id == 1)
          first_join_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now() - offered_at_)
                                   .count());
        if (id <= helpers_)
          body_(ctx_, id);  // (never throws: the pass allocates before it offers)
        else
          surplus = true;
      }
      running_.fetch_sub(1);
    }
  }

  static constexpr int kMaxWorkers = 63;
  static constexpr std::chrono::microseconds kSpin{200};
  static constexpr std::chrono::microseconds kLate{10};
  static constexpr int kMisses = 4;
  static constexpr int kRest = 64;
  int misses_ = 0;                                      // (under busy_)
  std::atomic<int> rest_{0};                            // passes left to count alone
  std::chrono::steady_clock::time_point offered_at_{};  // the open offer's time (written before seq_)
  std::atomic<std::int64_t> first_join_ns_{0};          // how long after it the first worker joined
  const long gen_;
  std::atomic<bool> busy_{false};  // a pass holds the team
  std::atomic<int> workers_{0};
  std::atomic<std::uint64_t> seq_{0};  // odd: an offer is open
  std::atomic<int> running_{0};        // workers inside an offer
  std::atomic<int> joined_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<std::uint64_t> wakes_{0};        // wake() calls that found sleepers (under mu_)
  std::atomic<std::int64_t> hot_until_ns_{0};  // workers watch until then (steady_clock, ns)
  Body body_ = nullptr;                        // the open offer (written before seq_ opens it)
  void* ctx_ = nullptr;
  int helpers_ = 0;
  std::mutex mu_;
  std::condition_variable wake_;
};

// A team pass: chunks of rows pulled from a shared counter, a table per participant.
struct TeamPass {
  static constexpr int kMaxParticipants = 64;
  const SlotProblem* pb = nullptr;
  i64 cells = 0;
  bool split = false;
  bool narrow = false;  // narrow_cells(*pb)
  i64 chunk = 0, n_chunks = 0;
  std::atomic<i64> next{0};
  std::atomic<bool> failed{false};
  std::int64_t* table[kMaxParticipants] = {};  // the caller's (0: raw); helpers' without split
  std::int32_t* small[kMaxParticipants] = {};  // with split: the helpers' tables (flush_split32)
  std::int32_t* sub[kMaxParticipants] = {};
  RowError err[kMaxParticipants];
  i64 done[kMaxParticipants] = {};  // chunks each participant counted

  static void body(void* ctx, int id) {
    TeamPass& tp = *static_cast<TeamPass*>(ctx);
    const SlotProblem& pb = *tp.pb;
    std::int32_t* sub = tp.split ? tp.sub[id] : nullptr;
    i64* table = tp.table[id];
    std::int32_t* small = id > 0 ? tp.small[id] : nullptr;
    bool stored = false;  // (small: written by the first flush, added to by the others)
    const auto flush = [&] {
      if (small != nullptr) {
        flush_split32(sub, tp.cells, small, !stored);
        stored = true;
      } else {
        flush_split(sub, tp.cells, table);
      }
    };
    i64 pending = 0;
    while (!tp.failed.load(std::memory_order_relaxed)) {
      const i64 c = tp.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= tp.n_chunks) break;
      const i64 begin = c * tp.chunk, end = std::min(pb.n_rows, begin + tp.chunk);
      const RowError e = count_range(pb, begin, end, tp.cells, table, sub, tp.narrow);
      if (e.what != 0) {  // chunks are pulled in order: every earlier chunk is counted to its end
        keep_first_error(tp.err[id], e);
        tp.failed.store(true, std::memory_order_relaxed);
        break;
      }
      pending += end - begin;
      ++tp.done[id];
      if (sub != nullptr && pending >= kMaxSplitRows) {
        flush();
        pending = 0;
      }
    }
    if (sub != nullptr) flush();
  }
};

}  // namespace

RowError slot_counts_cpu(const SlotProblem& pb, std::int64_t* raw, int n_threads) {
  const i64 cells = pb.raw_cells();
  const bool split = cells > 0 && cells <= kSplitCellsMax;
  if (split && pb.n_rows > 0 && pb.n_rows <= detail::kRowsPerChunk) {
    // One chunk (what run_chunked_ranges makes of it, on one thread): counted here into this
    // thread's sub-tables, which stay zero between calls (flush_split zeroes them, after an error
    // too), without the driver's allocations (a stream's small batches come every few us).
    thread_local std::vector<std::int32_t> sub;
    if (sub.size() < static_cast<size_t>(kWays * cells)) sub.assign(static_cast<size_t>(kWays * cells), 0);
    std::fill(raw, raw + cells, std::int64_t{0});
    const RowError err = count_range(pb, 0, pb.n_rows, cells, raw, sub.data(), narrow_cells(pb));
    flush_split(sub.data(), cells, raw);  // (with an error, raw is not the table: the caller declines)
    return err;
  }
  const bool narrow = narrow_cells(pb);
  return detail::run_chunked_ranges<i64>(
      pb.n_rows, cells, n_threads, raw, [&](i64 begin, i64 end, i64* table) -> RowError {
        // a chunk holds at most kRowsPerChunk rows: each sub-table count fits int32
        std::vector<std::int32_t> sub(split ? static_cast<size_t>(kWays * cells) : 0, 0);
        const RowError err = count_range(pb, begin, end, cells, table, split ? sub.data() : nullptr, narrow);
        if (split && err.what == 0) flush_split(sub.data(), cells, table);
        return err;
      });
}

namespace {

// The participants of a team pass asked for n_threads (0: every core; hardware_concurrency reads
// /sys on every call, ~8 us: asked once).
int team_threads(int n_threads) {
  static const int all_cores = detail::resolve_threads(0);
  return std::min(n_threads > 0 ? n_threads : all_cores, TeamPass::kMaxParticipants);
}

}  // namespace

RowError slot_counts_team(const SlotProblem& pb, std::int64_t* raw, int n_threads) {
  const i64 n = pb.n_rows, cells = pb.raw_cells();
  const int threads = team_threads(n_threads);
  if (threads <= 1 || n < kTeamMinRows || n >= kTeamMaxRows || cells <= 0 ||
      cells > kTeamCellsMax)  // (as the one-pass path)
    return slot_counts_cpu(pb, raw, n > detail::kRowsPerChunk ? threads : 1);
  if (n_threads <= 0 && team_alone(pb)) return slot_counts_cpu(pb, raw, 1);  // (asked threads: offered)
  Team& team = Team::instance();
  if (n_threads <= 0 && team.take_rest()) return slot_counts_cpu(pb, raw, 1);
  std::fill(raw, raw + cells, std::int64_t{0});
  TeamPass tp;
  tp.pb = &pb;
  tp.cells = cells;
  tp.split = cells <= kSplitCellsMax;
  tp.narrow = narrow_cells(pb);
  // chunks of 2,048 to 16,384 rows, about eight per participant: a late worker still finds some,
  // and the caller never waits for more than one chunk of a worker's
  tp.chunk = std::clamp<i64>((n / (8 * threads) + kBlock - 1) / kBlock * kBlock, 4 * kBlock, 32 * kBlock);
  tp.n_chunks = (n + tp.chunk - 1) / tp.chunk;
  // at most one participant per 8,192 rows (two at least): a helper costs ~1-2 us (its flush, its
  // merge) and then watches for the next offer, so a 10,000-row pass takes one, 100,000 rows 11
  const i64 participants = std::min<i64>(threads, std::max<i64>(2, n / 8192));
  const int helpers = static_cast<int>(std::min<i64>(participants - 1, tp.n_chunks - 1));
  // every table before the offer (a worker never allocates): this thread's scratch. Sub-tables
  // are zero between passes (zeroed by their flush), so are the int64 helper tables of a pass
  // without split (zeroed by the merge below); a split pass's int32 helper tables are written
  // whole by each helper's first flush
  thread_local std::vector<std::int64_t> tables;
  thread_local std::vector<std::int32_t> smalls;
  thread_local std::vector<std::int32_t> subs;
  const auto n_tables = tp.split ? size_t{0} : static_cast<size_t>(helpers * cells);
  const auto n_smalls = tp.split ? static_cast<size_t>(helpers * cells) : size_t{0};
  const auto n_subs = tp.split ? static_cast<size_t>((helpers + 1) * kWays * cells) : size_t{0};
  if (tables.size() < n_tables) tables.resize(n_tables, 0);
  if (smalls.size() < n_smalls) smalls.resize(n_smalls, 0);
  if (subs.size() < n_subs) subs.resize(n_subs, 0);
  for (int p = 0; p <= helpers; ++p) {
    if (p == 0)
      tp.table[p] = raw;
    else if (tp.split)
      tp.small[p] = smalls.data() + static_cast<size_t>((p - 1) * cells);
    else
      tp.table[p] = tables.data() + static_cast<size_t>((p - 1) * cells);
    if (tp.split) tp.sub[p] = subs.data() + static_cast<size_t>(p * kWays * cells);
  }
  const int joined = team.run(helpers, &TeamPass::body, &tp, &tp.done[0], tp.n_chunks);
  RowError err;
  for (int p = 0; p <= joined; ++p) keep_first_error(err, tp.err[p]);
  for (int p = 1; p <= joined; ++p) {
    if (tp.split) {  // (written by the helper's flush: read only)
      const std::int32_t* t = tp.small[p];
      for (i64 c = 0; c < cells; ++c) raw[c] += t[c];
      continue;
    }
    std::int64_t* t = tp.table[p];
    for (i64 c = 0; c < cells; ++c) {
      raw[c] += t[c];
      t[c] = 0;
    }
  }
  return err;  // (with an error, raw is not the table: the caller declines the batch)
}

void team_wake(int n_threads, i64 hold_us) {
  const int threads = team_threads(n_threads);
  if (threads <= 1) return;
  Team::instance().wake(threads - 1, std::chrono::microseconds(std::clamp<i64>(hold_us, 0, 100000)));
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

namespace {

// The columns of facet f's slot table, [f, group?, label, prediction?]; returns how many.
int facet_columns(const StreamPlan& plan, int f, int* cols) {
  int k = 0;
  cols[k++] = f;
  if (plan.has_group) cols[k++] = plan.group_col();
  cols[k++] = plan.label_col();
  if (plan.has_pred) cols[k++] = plan.pred_col();
  return k;
}

// Clears the batch's pattern: one byte per slot of every column, facets first.
void stream_key_init(const StreamPlan& plan, StreamBatch& out) {
  const size_t ncols = plan.cols.size();
  out.key_at.assign(ncols, 0);
  size_t len = 0;
  for (size_t j = 0; j < ncols; ++j) {
    out.key_at[j] = len;
    len += static_cast<size_t>(plan.cols[j].size);
  }
  out.key.assign(len, '\0');
  out.known = true;
}

// One walk over facet f's slot table `raw` (four nested loops, absent columns as one-slot axes):
// marks the slots that occur in the pattern (the facet's from its own table, the shared columns'
// from facet 0's: every facet's table holds every row), notes a slot without a code
// (out.known = false) and, when `cells`, appends each occupied cell's count-table cell
// ((v * K + k) * 2 + y) * P + p and its count through the columns' slot -> code tables.
void stream_walk(const StreamPlan& plan, int f, const std::int64_t* raw, StreamBatch& out,
                 std::vector<i64>* cells, std::uint8_t* mask = nullptr, std::vector<i64>* pairs = nullptr) {
  int cols[kMaxCodeColumns];
  const int nc = facet_columns(plan, f, cols);
  char sink_byte[kMaxCodeColumns] = {};
  static const std::int32_t zero_code[1] = {0};
  char* ckey[kMaxCodeColumns];
  i64 ckey_mask[kMaxCodeColumns];  // a column whose presence this table does not give: one byte, reused
  const std::int32_t* code[kMaxCodeColumns];
  i64 mult[kMaxCodeColumns], dim[kMaxCodeColumns];
  for (int k = 0; k < kMaxCodeColumns; ++k) {
    if (k >= nc) {
      ckey[k] = &sink_byte[k];
      ckey_mask[k] = 0;
      code[k] = zero_code;
      mult[k] = 0;
      dim[k] = 1;
      continue;
    }
    const int j = cols[k];
    const bool own = k == 0 || f == 0;
    ckey[k] = own ? &out.key[out.key_at[static_cast<size_t>(j)]] : &sink_byte[k];
    ckey_mask[k] = own ? -1 : 0;
    code[k] = plan.cols[static_cast<size_t>(j)].code.data();
    mult[k] =
        k == 0 ? plan.K * 2 * plan.P
               : (j == plan.label_col() ? plan.P : (plan.has_pred && j == plan.pred_col() ? 1 : 2 * plan.P));
    dim[k] = plan.cols[static_cast<size_t>(j)].size;
  }
  bool uncoded = false;
  const std::int64_t* r = raw;
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
          if (mask != nullptr) mask[r - raw] = cnt != 0 ? 1 : 0;
          if (cnt == 0) continue;
          ckey[0][s0 & ckey_mask[0]] = 1;
          ckey[1][s1 & ckey_mask[1]] = 1;
          ckey[2][s2 & ckey_mask[2]] = 1;
          ckey[3][s3 & ckey_mask[3]] = 1;
          const std::int32_t c3 = code[3][s3];
          if (bad || c3 < 0) {
            uncoded = true;
            continue;
          }
          if (cells != nullptr) {
            cells->push_back(base + c3 * mult[3]);
            cells->push_back(cnt);
          }
          if (pairs != nullptr) {
            pairs->push_back(r - raw);
            pairs->push_back(base + c3 * mult[3]);
          }
        }
      }
    }
  }
  if (uncoded) out.known = false;
}

}  // namespace

void slot_stream_pattern(const StreamPlan& plan, const std::int64_t* const* raws, StreamBatch& out) {
  stream_key_init(plan, out);
  for (int f = 0; f < plan.n_facets; ++f) stream_walk(plan, f, raws[f], out, nullptr);
}

namespace {

// Facet f's slot-count problem over the stream's columns.
SlotProblem facet_problem(const StreamPlan& plan, int f, const void* const* codes, i64 n, int* cols) {
  SlotProblem pb;
  pb.n_rows = n;
  pb.n_cols = facet_columns(plan, f, cols);
  i64 stride = 1;
  for (int k = pb.n_cols - 1; k >= 0; --k) {
    const StreamColumn& c = plan.cols[static_cast<size_t>(cols[k])];
    pb.codes[k] = codes[cols[k]];
    pb.itemsize[k] = c.itemsize;
    pb.offset[k] = c.offset;
    pb.size[k] = c.size;
    pb.raw_stride[k] = stride;
    stride *= c.size;
  }
  return pb;
}

// Whether the occupied cells of `raw` are those of `mask`.
bool same_occupied(const std::int64_t* raw, const std::uint8_t* mask, i64 cells) {
  unsigned diff = 0;
  for (i64 c = 0; c < cells; ++c) diff |= static_cast<unsigned>(raw[c] != 0) ^ mask[c];
  return diff == 0;
}

// slot_stream_count of an unweighted batch: each facet's pass on the team, then the walk over the
// slot tables, or the last walk's result when the plan has a serial and the tables occupy the same
// cells (see StreamBatch::raws).
RowError slot_stream_count_unweighted(const StreamPlan& plan, const void* const* codes, i64 n, int n_threads,
                                      StreamBatch& out) {
  const auto F = static_cast<size_t>(plan.n_facets);
  out.raws.resize(F);
  out.cells.resize(F);
  bool same = plan.serial != 0 && out.walked_for == plan.serial && out.walked_mask.size() == F &&
              out.walked_cells.size() == F;
  for (size_t f = 0; f < F; ++f) {
    int cols[kMaxCodeColumns];
    const SlotProblem pb = facet_problem(plan, static_cast<int>(f), codes, n, cols);
    const i64 cells = pb.raw_cells();
    auto& raw = out.raws[f];
    raw.resize(static_cast<size_t>(cells));
    const RowError err = slot_counts_team(pb, raw.data(), n_threads);
    if (err.what != 0) return err;
    if (same)
      same = out.walked_mask[f].size() == raw.size() &&
             same_occupied(raw.data(), out.walked_mask[f].data(), cells);
  }
  if (same) {  // the cells of the last walk: its pattern, and this batch's counts of its pairs
    out.key = out.walked_key;
    out.known = out.walked_known;
    if (!out.known) return RowError{};
    for (size_t f = 0; f < F; ++f) {
      const auto& pairs = out.walked_cells[f];
      const std::int64_t* raw = out.raws[f].data();
      auto& cells = out.cells[f];
      cells.resize(pairs.size());
      for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
        cells[i] = pairs[i + 1];
        cells[i + 1] = raw[pairs[i]];
      }
    }
    return RowError{};
  }
  out.walked_for = 0;  // (the walk below replaces it; an exception leaves nothing to reuse)
  stream_key_init(plan, out);
  out.walked_mask.resize(F);
  out.walked_cells.resize(F);
  for (size_t f = 0; f < F; ++f) {
    out.cells[f].clear();
    out.walked_cells[f].clear();
    out.walked_mask[f].resize(out.raws[f].size());
    stream_walk(plan, static_cast<int>(f), out.raws[f].data(), out, &out.cells[f], out.walked_mask[f].data(),
                &out.walked_cells[f]);
  }
  out.walked_key = out.key;
  out.walked_known = out.known;
  out.walked_for = plan.serial;
  return RowError{};
}

std::atomic<std::uint64_t> g_stream_serial{0};

}  // namespace

std::uint64_t next_stream_serial() { return g_stream_serial.fetch_add(1) + 1; }

RowError slot_stream_count(const StreamPlan& plan, const void* const* codes, const double* weights, i64 n,
                           int n_threads, StreamBatch& out) {
  const int F = plan.n_facets;
  if (!plan.weighted) return slot_stream_count_unweighted(plan, codes, n, n_threads, out);
  stream_key_init(plan, out);
  out.cells.clear();
  out.wtable.resize(static_cast<size_t>(F));
  for (int f = 0; f < F; ++f) {
    int cols[kMaxCodeColumns];
    SlotProblem pb = facet_problem(plan, f, codes, n, cols);
    out.raw.resize(static_cast<size_t>(pb.raw_cells()));
    // the weighted table's axes: facet (its slots, or 0/1 for selected values), group slots,
    // label (0/1), prediction (0/1): [Fm][Km][2][P], as the one-pass path counts it; its
    // threads are slot_counts_cpu's (the sums' order is fixed by the row count alone)
    const i64 Km = plan.has_group ? plan.cols[static_cast<size_t>(plan.group_col())].size : 1;
    const i64 P = plan.P;
    const i64 mstrides[kMaxCodeColumns] = {Km * 2 * P, plan.has_group ? 2 * P : P, plan.has_group ? P : 1, 1};
    for (int k = 0; k < pb.n_cols; ++k) {
      pb.lut[k] = plan.cols[static_cast<size_t>(cols[k])].wmap.data();
      pb.map_stride[k] = mstrides[k];
    }
    out.mapped.resize(static_cast<size_t>(plan.mapped_cells[static_cast<size_t>(f)]));
    const RowError err =
        slot_weighted_counts_cpu(pb, weights, plan.mapped_cells[static_cast<size_t>(f)], out.mapped.data(),
                                 out.raw.data(), n <= detail::kRowsPerChunk ? 1 : n_threads);
    if (err.what != 0) return err;
    stream_walk(plan, f, out.raw.data(), out, nullptr);
    if (!out.known) return RowError{};
    // the weighted sums, one-to-one onto the codes (the occurring facet slots of a vocabulary
    // facet, both codes of a selected facet; the occurring group slots)
    const i64 K = plan.K;
    const StreamColumn& fc = plan.cols[static_cast<size_t>(f)];
    auto& tab = out.wtable[static_cast<size_t>(f)];
    tab.assign(static_cast<size_t>(plan.table_cells(f)), 0.0);
    const bool fslots = plan.facet_slots[static_cast<size_t>(f)];
    const i64 Fm = fslots ? fc.size : 2;
    const char* fk = &out.key[out.key_at[static_cast<size_t>(f)]];
    const char* gk = plan.has_group ? &out.key[out.key_at[static_cast<size_t>(plan.group_col())]] : nullptr;
    const std::vector<double>& mapped = out.mapped;
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
