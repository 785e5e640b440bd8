"""Django finds the app's commands in commands/."""
