module github.com/consentgate/consentgate/deploy/k8s-schemas

go 1.26.0
