package main

// newAdminTarget returns the target that talks to a server's admin handler.
func newAdminTarget(o options) (target, error) {
	return nil, usagef("-admin %q: not supported yet", o.admin)
}
