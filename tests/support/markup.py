"""Text that Rich would read as markup tags (the closing ones raise MarkupError): a name a user may give a node,
a rig or a file, which every command must print as it is."""

MARKUP = "[/dev/nvme0n1] [bold]x[/] [/]"
