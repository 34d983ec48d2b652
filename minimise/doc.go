// Package minimise applies a decision's field actions (keep, drop, mask, hash,
// derive) to a JSON document in one pass over its bytes, and says what was
// disclosed and withheld. It knows nothing of HTTP or of vendors.
package minimise
