package configs

import (
	"fmt"
	"regexp"
)

// NodeEnv is the environment variable that names the node when the --node flag
// does not. Replicas that share one configuration file (a Kubernetes
// StatefulSet's ConfigMap) get their own node this way: the chart sets it to
// the pod name through the downward API.
const NodeEnv = "CONSENTGATE_NODE"

// nodeRE is what a node may be: it is written into every audit record and log
// line and names each replica's chain in a merged export, so it is kept to a
// DNS label's characters and length (a StatefulSet pod name fits).
var nodeRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

// CheckNode reports whether name can be a node.
func CheckNode(name string) error {
	if !nodeRE.MatchString(name) {
		return fmt.Errorf("node %q: use 1 to 63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// LoadWithNode is Load with node, when not empty, in place of the file's
// node: (before validation, so a shared file may leave node: out). The caller
// decides where node comes from: the --node flag, else NodeEnv.
func LoadWithNode(file, node string) (*Config, error) {
	if node != "" {
		if err := CheckNode(node); err != nil {
			return nil, err
		}
	}
	return load(file, node)
}
