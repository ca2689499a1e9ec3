// Package baseline holds, one file per backend, the raw client calls each
// Store of this module is built on, wrapped as a measure.Baseline: the floor
// a Store's cost is measured against. The backend's own benchmarks and the
// comparison command (go run ./bench) use the same ones, so a row of the
// comparison and a backend's benchmark compare with the same calls. They
// keep none of the contract: no id checks, no monotonic writes.
//
// They live here rather than in each backend's folder because Go lets a
// command (bench) import another folder's code only when it is exported,
// and test-only code should not widen a backend's public API.
package baseline
