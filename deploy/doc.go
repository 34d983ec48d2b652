// Package deploy holds consentgate's deployment artefacts: the container image
// (Dockerfile), a compose file with a Vault dev server, the Helm chart and the
// systemd unit. It has no Go code of its own; deploy_test.go checks the files.
package deploy
