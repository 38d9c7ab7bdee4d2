#!/bin/sh
# adnanh/webhook hook command: append the request body ($2) as one line to the file $1.
printf '%s\n' "$2" >> "$1"
