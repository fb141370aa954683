from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView


class ApiRoot(APIView):
    def get(self, request):
        return Response({})


urlpatterns = [path("", ApiRoot.as_view(), name="api-root")]
