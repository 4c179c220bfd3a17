"""The images controller: the Delete Image proxy call."""

import webob

from compute_api import exception
from compute_api.api import microversion
from compute_api.policies import images as images_policies


class ImagesController:

    def __init__(self, image_api):
        self.image_api = image_api

    def delete(self, req, context, version, image_id):
        """Delete an image in the Image service for the caller's project."""
        if version > microversion.MAX_IMAGE_PROXY_VERSION:
            raise exception.NotFound()
        context.can(images_policies.DELETE,
                    target={'project_id': context.project_id})
        self.image_api.delete(context, image_id)
        return webob.Response(status=204, content_type=None)
