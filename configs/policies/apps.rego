# METADATA
# title: App permissions
# description: |
#   Which vendors, purposes and tenant operations an app may use: data.apps, keyed
#   by the app id its client certificate proves. An app not listed there may use
#   nothing.
package consentgate.apps

app := data.apps[input.app.id]

vendor_allowed if input.vendor in app.vendors

purpose_allowed if input.purpose in app.purposes

tenant_operation_allowed if input.operation in app.tenant_operations
