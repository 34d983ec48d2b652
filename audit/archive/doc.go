// Package archive moves sealed audit segments off the node under a retention
// policy: copy to a directory or an S3-compatible bucket, verify the copy, only
// then delete here; expire from the archive when its retention ends.
package archive
