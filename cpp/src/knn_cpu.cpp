// CPU driver of the exact k-NN vote: a kd-tree over the reference rows, built once (top levels
// sequentially, subtrees in parallel), then queried in parallel. Queries are processed in the order
// of the leaf they fall in, so that neighbouring queries touch the same part of the tree (cache
// locality); each query's answer is exact and independent of that order and of the thread count.
//
// Exactness: node bounding boxes are the exact min/max of the node's points, pruning uses
// box_lower_bound() > current k-th distance (strict), and leaf scans compare (distance, index)
// pairs with closer() -- see knn.hpp for why the floating-point bounds are safe.
// This file is compiled with -ffp-contract=off (CMakeLists.txt) so no FMA changes a distance.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "clarion/knn.hpp"
#include "clarion/knn_drivers.hpp"
#include "clarion/parallel.hpp"

namespace clarion::knn {

using detail::parallel_for_threads;
using detail::resolve_threads;

void validate(const KnnProblem& pb) {
  if (pb.n_a < 1) throw std::invalid_argument("knn: the reference set is empty (n_a = 0)");
  if (pb.n_d < 0) throw std::invalid_argument("knn: n_d must be >= 0");
  if (pb.m < 1) throw std::invalid_argument("knn: at least one feature column is needed");
  if (pb.k < 1 || pb.k > pb.n_a)
    throw std::invalid_argument("knn: k = " + std::to_string(pb.k) +
                                " must be in [1, n_a = " + std::to_string(pb.n_a) + "]");
}

namespace {

constexpr i64 kLeafSize = 64;
constexpr i64 kSplitSample = 128;  // points sampled to choose a node's split dimension
constexpr i64 kSmallK = 32;        // sorted-list neighbour set up to here, binary heap above
constexpr i64 kQueriesPerChunk = 256;
constexpr int kMaxDepth = 96;

class KdTree {
 public:
  KdTree(const double* xa, const std::uint8_t* ya, i64 n, i64 m, int n_threads) : n_(n), m_(m) {
    depth_ = 0;
    while (ceil_div(n_, i64{1} << depth_) > kLeafSize) ++depth_;
    if (depth_ > kMaxDepth - 2) throw std::invalid_argument("knn: too many reference rows");
    const i64 n_nodes = (i64{1} << (depth_ + 1)) - 1;
    node_lo_.assign(n_nodes, 0);
    node_hi_.assign(n_nodes, 0);
    split_dim_.assign(n_nodes, -1);
    split_val_.assign(n_nodes, 0.0);
    box_.assign(static_cast<size_t>(n_nodes * 2 * m_), 0.0);
    min_idx_.assign(n_nodes, 0);
    idx_.resize(n_);
    for (i64 i = 0; i < n_; ++i) idx_[i] = i;
    pts_.assign(xa, xa + n_ * m_);  // the working copy, permuted into tree order by build()
    cols_.resize(pts_.size());
    labels_.resize(n_);
    for (i64 i = 0; i < n_; ++i) labels_[i] = ya[i] ? 1 : 0;

    const int threads = resolve_threads(n_threads);
    int par_depth = 0;
    while ((1 << par_depth) < 4 * threads && par_depth < depth_) ++par_depth;
    std::vector<Task> frontier;
    build(0, 0, n_, 0, par_depth, &frontier);
    std::atomic<size_t> next{0};
    parallel_for_threads(static_cast<int>(std::min<size_t>(threads, frontier.size())), [&](int) {
      for (;;) {
        const size_t t = next.fetch_add(1);
        if (t >= frontier.size()) break;
        const Task& task = frontier[t];
        build(task.node, task.lo, task.hi, task.depth, -1, nullptr);
        compute_boxes(task.node);
      }
    });
    compute_top_boxes(0, 0, par_depth);
    pts_.clear();  // searches read cols_
    pts_.shrink_to_fit();
  }

  i64 m() const { return m_; }
  i64 root_lo() const { return 0; }

  // The leaf a query falls into by the split planes (used only to order the queries).
  i64 leaf_of(const double* q) const {
    i64 node = 0;
    while (split_dim_[node] >= 0) node = q[split_dim_[node]] < split_val_[node] ? 2 * node + 1 : 2 * node + 2;
    return node;
  }

  // The k nearest reference rows of q: fills the neighbour set `nb`.
  template <class Set>
  void search(const double* q, Set& nb) const {
    struct Entry {
      i64 node;
      double lb;
    };
    Entry stack[2 * kMaxDepth + 4];
    int top = 0;
    stack[top++] = {0, box_lower_bound(q, lo(0), hi(0), m_)};
    while (top > 0) {
      const Entry e = stack[--top];
      const i64 node = e.node;
      if (nb.full() && prunable(e.lb, node, nb)) continue;
      if (split_dim_[node] < 0) {
        const i64 lo_p = node_lo_[node], count = node_hi_[node] - lo_p;
        double dist[kLeafSize];
        sq_dist_columns(q, cols_.data() + lo_p * m_, count, m_, dist);
        for (i64 p = 0; p < count; ++p) {
          if (nb.full() && dist[p] > nb.worst_dist()) continue;
          nb.offer(dist[p], idx_[lo_p + p], labels_[lo_p + p]);
        }
        continue;
      }
      const i64 left = 2 * node + 1, right = 2 * node + 2;
      const double lb_l = box_lower_bound(q, lo(left), hi(left), m_);
      const double lb_r = box_lower_bound(q, lo(right), hi(right), m_);
      if (nb.full()) {
        const bool skip_l = prunable(lb_l, left, nb), skip_r = prunable(lb_r, right, nb);
        if (skip_l && skip_r) continue;
        if (skip_l) {
          stack[top++] = {right, lb_r};
          continue;
        }
        if (skip_r) {
          stack[top++] = {left, lb_l};
          continue;
        }
      }
      // Push the farther child first so that the nearer one is searched first.
      if (lb_l <= lb_r) {
        stack[top++] = {right, lb_r};
        stack[top++] = {left, lb_l};
      } else {
        stack[top++] = {left, lb_l};
        stack[top++] = {right, lb_r};
      }
    }
  }

 private:
  // No point of `node` can enter a full neighbour set: every point is at least lb away, and at
  // exactly that distance only with an index above the current k-th neighbour's.
  template <class Set>
  bool prunable(double lb, i64 node, const Set& nb) const {
    const double w = nb.worst_dist();
    return lb > w || (lb == w && min_idx_[node] > nb.worst_idx());
  }

  struct Task {
    i64 node, lo, hi;
    int depth;
  };

  static i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }
  const double* lo(i64 node) const { return box_.data() + node * 2 * m_; }
  const double* hi(i64 node) const { return box_.data() + node * 2 * m_ + m_; }
  double* lo_mut(i64 node) { return box_.data() + node * 2 * m_; }
  double* hi_mut(i64 node) { return box_.data() + node * 2 * m_ + m_; }

  // Split dimension: the largest spread among up to kSplitSample evenly spaced points of the range
  // (the choice only affects speed, never the answer).
  i64 choose_dim(i64 lo, i64 hi) const {
    const i64 count = hi - lo;
    const i64 step = std::max<i64>(1, count / kSplitSample);
    i64 best = 0;
    double best_spread = -1.0;
    for (i64 j = 0; j < m_; ++j) {
      double mn = std::numeric_limits<double>::infinity(), mx = -mn;
      for (i64 p = lo; p < hi; p += step) {
        const double v = pts_[p * m_ + j];
        mn = std::min(mn, v);
        mx = std::max(mx, v);
      }
      const double spread = mx - mn;
      if (spread > best_spread) {
        best_spread = spread;
        best = j;
      }
    }
    return best;
  }

  void build(i64 node, i64 lo, i64 hi, int depth, int par_depth, std::vector<Task>* frontier) {
    if (frontier != nullptr && depth >= par_depth) {
      frontier->push_back({node, lo, hi, depth});
      return;
    }
    node_lo_[node] = lo;
    node_hi_[node] = hi;
    if (hi - lo <= kLeafSize) {
      if (frontier != nullptr) frontier->push_back({node, lo, hi, depth});  // a leaf above par_depth
      return;
    }
    const i64 dim = choose_dim(lo, hi);
    const i64 mid = lo + (hi - lo) / 2;
    select(lo, hi, mid, dim, static_cast<u64>(node));
    // Equal keys may straddle the median; that is fine: the split plane only orders the queries
    // (leaf_of), while searches prune with the exact boxes.
    split_dim_[node] = dim;
    split_val_[node] = pts_[mid * m_ + dim];
    build(2 * node + 1, lo, mid, depth + 1, par_depth, frontier);
    build(2 * node + 2, mid, hi, depth + 1, par_depth, frontier);
  }

  double key(i64 p, i64 dim) const { return pts_[p * m_ + dim]; }

  void swap_rows(i64 a, i64 b) {
    std::swap_ranges(pts_.data() + a * m_, pts_.data() + (a + 1) * m_, pts_.data() + b * m_);
    std::swap(idx_[a], idx_[b]);
    std::swap(labels_[a], labels_[b]);
  }

  // Quickselect on the rows [lo, hi) by column `dim`: afterwards row nth holds the value it would
  // have in sorted order, rows before it are <= and rows after it >=. Rows move as a whole (point,
  // index, label), so the memory traffic is sequential. Pivot: median of three pseudo-random rows
  // (deterministic, keyed on the node), swapped to the front for Hoare's partition.
  void select(i64 lo, i64 hi, i64 nth, i64 dim, u64 seed) {
    u64 state = seed * 0x9E3779B97F4A7C15ull + 1;
    auto next_rand = [&state]() {
      state += 0x9E3779B97F4A7C15ull;
      u64 z = state;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      return z ^ (z >> 31);
    };
    while (hi - lo > 1) {
      const u64 n = static_cast<u64>(hi - lo);
      i64 a = lo + static_cast<i64>(next_rand() % n), b = lo + static_cast<i64>(next_rand() % n),
          c = lo + static_cast<i64>(next_rand() % n);
      if (key(a, dim) > key(b, dim)) std::swap(a, b);
      if (key(b, dim) > key(c, dim)) std::swap(b, c);
      if (key(a, dim) > key(b, dim)) std::swap(a, b);
      swap_rows(lo, b);
      const double pivot = key(lo, dim);
      i64 i = lo - 1, j = hi;
      for (;;) {
        do ++i;
        while (key(i, dim) < pivot);
        do --j;
        while (key(j, dim) > pivot);
        if (i >= j) break;
        swap_rows(i, j);
      }
      // Now [lo, j] <= pivot <= [j + 1, hi), with lo <= j < hi - 1.
      if (nth <= j)
        hi = j + 1;
      else
        lo = j + 1;
    }
  }

  void compute_boxes(i64 node) {
    double* l = lo_mut(node);
    double* h = hi_mut(node);
    if (split_dim_[node] < 0) {
      std::fill(l, l + m_, std::numeric_limits<double>::infinity());
      std::fill(h, h + m_, -std::numeric_limits<double>::infinity());
      i64 mi = std::numeric_limits<i64>::max();
      for (i64 p = node_lo_[node]; p < node_hi_[node]; ++p) {
        mi = std::min(mi, idx_[p]);
        const double* x = pts_.data() + p * m_;
        for (i64 j = 0; j < m_; ++j) {
          l[j] = std::min(l[j], x[j]);
          h[j] = std::max(h[j], x[j]);
        }
      }
      min_idx_[node] = mi;
      // The leaf's points column by column, for the vectorised scan.
      const i64 lo_p = node_lo_[node], count = node_hi_[node] - lo_p;
      for (i64 p = 0; p < count; ++p)
        for (i64 j = 0; j < m_; ++j) cols_[lo_p * m_ + j * count + p] = pts_[(lo_p + p) * m_ + j];
      return;
    }
    compute_boxes(2 * node + 1);
    compute_boxes(2 * node + 2);
    union_children(node);
  }

  void compute_top_boxes(i64 node, int depth, int par_depth) {
    if (depth >= par_depth || split_dim_[node] < 0) return;  // done by the subtree tasks
    compute_top_boxes(2 * node + 1, depth + 1, par_depth);
    compute_top_boxes(2 * node + 2, depth + 1, par_depth);
    union_children(node);
  }

  void union_children(i64 node) {
    double* l = lo_mut(node);
    double* h = hi_mut(node);
    const i64 a = 2 * node + 1, b = 2 * node + 2;
    min_idx_[node] = std::min(min_idx_[a], min_idx_[b]);
    for (i64 j = 0; j < m_; ++j) {
      l[j] = std::min(lo(a)[j], lo(b)[j]);
      h[j] = std::max(hi(a)[j], hi(b)[j]);
    }
  }

  i64 n_, m_;
  int depth_ = 0;
  std::vector<i64> node_lo_, node_hi_, split_dim_, min_idx_;
  std::vector<double> split_val_, box_;
  std::vector<i64> idx_;      // tree position -> reference-row index
  std::vector<double> pts_;   // reference rows in tree order
  std::vector<double> cols_;  // the same, column by column within each leaf
  std::vector<std::uint8_t> labels_;
};

// Up to kSmallK neighbours: a list sorted by closer().
class SortedSet {
 public:
  explicit SortedSet(i64 k) : k_(k) {}
  void reset() { len_ = 0; }
  bool full() const { return len_ == k_; }
  double worst_dist() const { return dist_[len_ - 1]; }
  i64 worst_idx() const { return index_[len_ - 1]; }
  void offer(double d, i64 idx, std::uint8_t label) {
    insert_sorted(dist_, index_, label_, &len_, k_, d, idx, label);
  }
  i64 positives() const {
    i64 s = 0;
    for (i64 i = 0; i < len_; ++i) s += label_[i];
    return s;
  }

 private:
  i64 k_, len_ = 0;
  double dist_[kSmallK];
  i64 index_[kSmallK];
  std::uint8_t label_[kSmallK];
};

// Any k: a binary max-heap under closer() (the root is the current k-th neighbour).
class HeapSet {
 public:
  explicit HeapSet(i64 k) : k_(k) { items_.reserve(k); }
  void reset() { items_.clear(); }
  bool full() const { return static_cast<i64>(items_.size()) == k_; }
  double worst_dist() const { return items_.front().d; }
  i64 worst_idx() const { return items_.front().idx; }
  void offer(double d, i64 idx, std::uint8_t label) {
    if (full()) {
      if (!closer(d, idx, items_.front().d, items_.front().idx)) return;
      std::pop_heap(items_.begin(), items_.end(), less_);
      items_.back() = {d, idx, label};
    } else {
      items_.push_back({d, idx, label});
    }
    std::push_heap(items_.begin(), items_.end(), less_);
  }
  i64 positives() const {
    i64 s = 0;
    for (const auto& it : items_) s += it.label;
    return s;
  }

 private:
  struct Item {
    double d;
    i64 idx;
    std::uint8_t label;
  };
  struct Less {
    bool operator()(const Item& a, const Item& b) const { return closer(a.d, a.idx, b.d, b.idx); }
  };
  i64 k_;
  std::vector<Item> items_;
  Less less_;
};

template <class Set>
void query_all(const KdTree& tree, const KnnProblem& pb, const double* xd, const std::vector<i64>& order,
               std::int64_t* positives, std::uint8_t* votes, int threads) {
  const i64 n_chunks = (pb.n_d + kQueriesPerChunk - 1) / kQueriesPerChunk;
  std::atomic<i64> next{0};
  parallel_for_threads(static_cast<int>(std::min<i64>(threads, std::max<i64>(n_chunks, 1))), [&](int) {
    Set nb(pb.k);
    for (;;) {
      const i64 c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks) break;
      const i64 end = std::min(pb.n_d, (c + 1) * kQueriesPerChunk);
      for (i64 t = c * kQueriesPerChunk; t < end; ++t) {
        const i64 i = order[t];
        nb.reset();
        tree.search(xd + i * pb.m, nb);
        const i64 pos = nb.positives();
        positives[i] = pos;
        votes[i] = majority_vote(pos, pb.k) ? 1 : 0;
      }
    }
  });
}

}  // namespace

void knn_vote_cpu(const KnnProblem& pb, const double* xa, const std::uint8_t* ya, const double* xd,
                  std::int64_t* positives, std::uint8_t* votes, int n_threads) {
  validate(pb);
  if (pb.n_d == 0) return;
  const int threads = resolve_threads(n_threads);
  if (pb.k == pb.n_a) {
    // Every reference row is a neighbour of every query: no search needed.
    i64 pos = 0;
    for (i64 i = 0; i < pb.n_a; ++i) pos += ya[i] ? 1 : 0;
    for (i64 i = 0; i < pb.n_d; ++i) {
      positives[i] = pos;
      votes[i] = majority_vote(pos, pb.k) ? 1 : 0;
    }
    return;
  }
  const KdTree tree(xa, ya, pb.n_a, pb.m, threads);

  // Order the queries by the leaf they fall in (a counting sort over leaf ids).
  std::vector<i64> leaf(pb.n_d);
  {
    std::atomic<i64> next{0};
    const i64 n_chunks = (pb.n_d + 4095) / 4096;
    parallel_for_threads(static_cast<int>(std::min<i64>(threads, n_chunks)), [&](int) {
      for (;;) {
        const i64 c = next.fetch_add(1);
        if (c >= n_chunks) break;
        for (i64 i = c * 4096; i < std::min(pb.n_d, (c + 1) * 4096); ++i)
          leaf[i] = tree.leaf_of(xd + i * pb.m);
      }
    });
  }
  std::vector<i64> order(pb.n_d);
  for (i64 i = 0; i < pb.n_d; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](i64 a, i64 b) { return leaf[a] < leaf[b] || (leaf[a] == leaf[b] && a < b); });

  if (pb.k <= kSmallK)
    query_all<SortedSet>(tree, pb, xd, order, positives, votes, threads);
  else
    query_all<HeapSet>(tree, pb, xd, order, positives, votes, threads);
}

}  // namespace clarion::knn
