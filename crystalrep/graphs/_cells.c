/* The per-cell loop of NeighborList.compute_many in C: vesin's neighbour search for many cells.
 *
 * Python calls vesin_neighbors through ctypes once per cell and copies each result out of
 * vesin's buffers; at ~20 edges per atom that loop, not the search, is what separates a batch
 * of small cells from the bare C call. Here one call walks all cells: it calls vesin (whose
 * address Python passes in, so nothing links against vesin), drops coincident points, numbers
 * atoms through the batch and writes straight into arrays NumPy allocated. Loaded with ctypes;
 * the module init below only lets setuptools build and locate it like any extension.
 *
 * The structs mirror vesin.h (vesin 0.4/0.5), as crystalrep/graphs/neighbors.py's ctypes ones do.
 */
#define _USE_MATH_DEFINES
#include <Python.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct Options {
    double cutoff;
    bool full;
    bool sorted;
    int algorithm;
    double skin;
    int32_t n_threads;
    bool return_shifts;
    bool return_distances;
    bool return_vectors;
};

struct Device {
    int type;
    int device_id;
};

struct Result {
    size_t length;
    struct Device device;
    size_t (*pairs)[2];
    int32_t (*shifts)[3];
    double *distances;
    double (*vectors)[3];
    void *opaque;
};

/* The bounds of one search (see crystalrep/graphs/neighbors.py, Bounds): vesin divides by zero on
 * edges near 1e20 Å, and its time grows with the periodic images a thin cell needs. */
struct Bounds {
    double max_length, max_edges, max_work;
};

/* Whether vesin's cell list would get 0 bins along an axis and divide by zero (SIGFPE): above
 * 1e5 bins it scales the three counts down keeping their ratios, truncating each. Counts are
 * tried one either side of a near-integer quotient. The same rule as neighbors._cell_list_collapses. */
static bool cell_list_collapses(const double reach[3]) {
    double counts[3][2];
    for (int i = 0; i < 3; i++) {
        const double x = reach[i] > 0 ? 1.0 / reach[i] : INFINITY;
        counts[i][0] = fmax(1.0, trunc(x * (1 - 1e-9)));
        counts[i][1] = fmax(1.0, trunc(x * (1 + 1e-9)));
        if (isinf(counts[i][0]) || isinf(counts[i][1])) return true;
    }
    for (int i = 0; i < 8; i++) {
        const double n0 = counts[0][i & 1], n1 = counts[1][(i >> 1) & 1], n2 = counts[2][(i >> 2) & 1];
        if (n0 * n1 * n2 > 1e5) {
            const double xy = n0 / n1, yz = n1 / n2;
            const double c2 = trunc(cbrt(1e5 / (xy * yz * yz))), c1 = trunc(yz * c2);
            if (c2 < 1 || c1 < 1 || trunc(xy * c1) < 1) return true;
        }
    }
    return false;
}

/* 0 if the cell is within the bounds, else 1 (any edge longer than max_length or not finite),
 * 2 (expected edges above max_edges), 3 (images x atoms above max_work), 4 (vesin's cell list
 * would collapse an axis). */
int crystalrep_cell_check(const double *l, int64_t n, double radius, const struct Bounds *bounds) {
    const double *a = l, *b = l + 3, *c = l + 6;
    const double faces[3][3] = {{b[1] * c[2] - b[2] * c[1], b[2] * c[0] - b[0] * c[2], b[0] * c[1] - b[1] * c[0]},
                                {c[1] * a[2] - c[2] * a[1], c[2] * a[0] - c[0] * a[2], c[0] * a[1] - c[1] * a[0]},
                                {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]}};
    const double volume = fabs(a[0] * faces[0][0] + a[1] * faces[0][1] + a[2] * faces[0][2]);
    double images = 1.0, reach[3];
    for (int i = 0; i < 3; i++) {
        const double *v = l + 3 * i, *f = faces[i];
        if (!(sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) <= bounds->max_length)) return 1;
        reach[i] = volume != 0 ? radius * sqrt(f[0] * f[0] + f[1] * f[1] + f[2] * f[2]) / volume : INFINITY;
        images *= 2.0 * ceil(reach[i]) + 1.0;
    }
    if (n == 0) return 0;
    const double edges = (double)n * (double)n * 4.0 / 3.0 * M_PI * radius * radius * radius / volume;
    if (!(edges <= bounds->max_edges)) return 2;
    if (cell_list_collapses(reach)) return 4;
    if (!(images * (double)n <= bounds->max_work)) return 3;
    return 0;
}

typedef int (*neighbors_fn)(const double (*)[3], size_t, const double (*)[3], const bool *, struct Device,
                            struct Options, struct Result *, const char **);

/* Cells state[0] .. n_cells - 1 (first atom state[1], first free edge row state[2]).
 *
 * Edges go to index (two rows of `capacity`: centre, neighbour; atoms numbered through the
 * batch), shifts [capacity, 3], dist [capacity], vec [capacity, 3]; edges[cell] gets the
 * count kept (distance > tol). Returns
 *   0 when all cells are done; the neighbour row is then moved to follow the centre row, so
 *     index[0 .. 2 * total) is a contiguous [2, total];
 *   1 when the next cell does not fit: state points at it and state[3] is its edge count;
 *     grow the arrays and call again;
 *  -1 when vesin failed: state[0] is the cell, *error vesin's message;
 *  -2 when a cell is outside the bounds: state[0] is the cell; it was not searched;
 *  -3 when a cell's positions (or, without atoms, its lattice) are not finite: state[0] is the cell.
 *
 * Positions come from frac [N, 3] and are written to pos [N, 3] as (f0 a + f1 b) + f2 c, the
 * sums graphs/cells.py's cartesian() makes (built without fused multiply-adds: equal bit for bit). */
int crystalrep_cells(neighbors_fn neighbors, const bool *periodic, const struct Options *options,
                     const struct Bounds *bounds, struct Result *result, const char **error, const double *frac,
                     double *pos, const double *lattices,
                     const int64_t *atoms, int64_t n_cells, double tol, int64_t capacity, int64_t *index,
                     int32_t *shifts, double *dist, double *vec, int64_t *edges, int64_t *state) {
    const struct Device cpu = {1, 0};
    int64_t cell = state[0], atom = state[1], total = state[2];
    for (; cell < n_cells; cell++) {
        const int64_t n = atoms[cell];
        const double *l = lattices + 9 * cell;
        bool finite = true;
        for (int k = 0; n == 0 && k < 9; k++) finite = finite && isfinite(l[k]);
        for (int64_t a = atom; a < atom + n; a++) {
            const double *f = frac + 3 * a;
            double *p = pos + 3 * a;
            for (int j = 0; j < 3; j++) {
                p[j] = (f[0] * l[j] + f[1] * l[3 + j]) + f[2] * l[6 + j];
                finite = finite && isfinite(p[j]);
            }
        }
        if (!finite) {
            state[0] = cell;
            return -3;
        }
        if (crystalrep_cell_check(lattices + 9 * cell, n, options->cutoff, bounds) != 0) {
            state[0] = cell;
            return -2;
        }
        if (neighbors((const double (*)[3])(pos + 3 * atom), (size_t)n, (const double (*)[3])(lattices + 9 * cell),
                      periodic, cpu, *options, result, error) != 0) {
            state[0] = cell;
            return -1;
        }
        const int64_t found = (int64_t)result->length;
        if (total + found > capacity) {
            state[0] = cell, state[1] = atom, state[2] = total, state[3] = found;
            return 1;
        }
        int64_t kept = total;
        for (int64_t k = 0; k < found; k++) {
            const double d = result->distances[k];
            if (!(d > tol)) continue; /* a coincident point, not a neighbour */
            index[kept] = atom + (int64_t)result->pairs[k][0];
            index[capacity + kept] = atom + (int64_t)result->pairs[k][1];
            memcpy(shifts + 3 * kept, result->shifts[k], 3 * sizeof(int32_t));
            dist[kept] = d;
            memcpy(vec + 3 * kept, result->vectors[k], 3 * sizeof(double));
            kept++;
        }
        edges[cell] = kept - total;
        total = kept;
        atom += n;
    }
    state[0] = cell, state[1] = atom, state[2] = total;
    memmove(index + total, index + capacity, (size_t)total * sizeof(int64_t));
    return 0;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_cells", .m_doc = "crystalrep_cells, loaded with ctypes.", .m_size = -1};

PyMODINIT_FUNC PyInit__cells(void) { return PyModule_Create(&module); }
