"""The city classes as a second head on the pretrained COCO detector (`streetvision train head`)."""
