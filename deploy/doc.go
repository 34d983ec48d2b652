// Package deploy holds consentgate's deployment artefacts: the container image
// (Dockerfile), a compose file with a Vault dev server and its seeding script,
// the Helm chart and the systemd unit. It has no Go code of its own; its tests
// check the files. k8s-schemas, vault-dev and vulndb are separate modules (tools).
package deploy
