package main

// imageSubcommands are image's verbs: building recipes and managing the
// store.
func imageSubcommands() []subcommand {
	return []subcommand{
		{"build", "build component images from recipes (images/<name>/) into the store", runImageBuild},
		{"ls", "list the images in the store", runImageLs},
	}
}
